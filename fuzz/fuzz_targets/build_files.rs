#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| reggie_build::fuzzing::build_files(data));
