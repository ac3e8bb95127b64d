#![no_main]

use reggie_build::plan::dockerfile::{context_use, parse, PlanOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(df) = parse("Dockerfile", data) {
        let _ = context_use(&df, &PlanOptions::default());
        let mut opts = PlanOptions::default();
        opts.build_args.insert("X".to_string(), "a/b".to_string());
        opts.target = df.stages.first().and_then(|s| s.name.clone());
        let _ = context_use(&df, &opts);
    }
});
