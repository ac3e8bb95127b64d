//! Generates an image with waste of every kind `size` finds planted in
//! it, for `benches/compare.sh`: about 1.2 GB at scale 1.
//!
//!   cargo run --release --example gen-image -- DIR [--scale S]
//!
//! writes DIR/image.tar (a `docker save` archive, Docker 20.10's layout,
//! plain layers), DIR/oci (an OCI layout of the same image with gzip
//! layers), DIR/Dockerfile (the instructions the history names) and
//! DIR/planted.txt (each planted item: kind, bytes, lines). Contents are
//! text-like (compressible about 3x, as code and packages are), and the
//! same for a scale on every run.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Text-like bytes from a seed: words of a small vocabulary.
fn content(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "import", "def", "return", "self", "class", "value", "config", "layer", "image", "docker",
        "build", "const", "let", "function", "module", "export", "package", "node", "python", "(",
        ")", "{", "}", "=", ";", "\n", "    ", "data", "error", "result",
    ];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        if x & 0x300 == 0 {
            // Some numbers, so that not everything repeats.
            out.extend_from_slice(format!("{}", x >> 40).as_bytes());
        }
        out.push(b' ');
    }
    out.truncate(len);
    out
}

enum Entry {
    Dir(&'static str),
    File(String, Vec<u8>, u32),
    Whiteout(String),
}

fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{p}/"), &[][..]).unwrap();
            }
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Entry::Whiteout(p) => {
                let (dir, name) = p.rsplit_once('/').unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, format!("{dir}/.wh.{name}"), &[][..])
                    .unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: gen-image DIR [--scale S]");
    let mut scale = 1.0f64;
    while let Some(a) = args.next() {
        if a == "--scale" {
            scale = args.next().and_then(|s| s.parse().ok()).expect("--scale S");
        }
    }
    let mb = |n: f64| ((n * scale * 1_000_000.0) as usize).max(1000);
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();

    let mut base = vec![
        Entry::Dir("usr"),
        Entry::Dir("usr/lib"),
        Entry::Dir("usr/include"),
        Entry::Dir("var"),
        Entry::Dir("var/lib"),
        Entry::Dir("root"),
    ];
    let base_files = (2000.0 * scale).max(20.0) as usize;
    for i in 0..base_files {
        base.push(Entry::File(
            format!("usr/lib/lib{i}.so"),
            content(mb(200.0) / base_files, 1000 + i as u64),
            0o644,
        ));
    }
    let model = content(mb(250.0), 1);
    let assets = content(mb(150.0), 2);
    let mut app = vec![
        Entry::Dir("app"),
        Entry::File("app/model.bin".into(), model.clone(), 0o644),
        Entry::File("app/assets.bin".into(), assets.clone(), 0o644),
        Entry::File("app/config.bin".into(), content(mb(30.0), 3), 0o644),
    ];
    let small = (1000.0 * scale).max(10.0) as usize;
    for i in 0..small {
        app.push(Entry::File(
            format!("app/pkg/m{i}.py"),
            content(mb(20.0) / small, 5000 + i as u64),
            0o644,
        ));
    }
    let layers: Vec<(Vec<u8>, &str)> = vec![
        (layer(&base), ""),
        (layer(&app), "COPY app/ /app/ # buildkit"),
        (
            layer(&[Entry::Dir("app"), Entry::File("app/model.bin".into(), model, 0o600)]),
            "RUN /bin/sh -c chmod 600 /app/model.bin # buildkit",
        ),
        (
            layer(&[Entry::Dir("app"), Entry::File("app/data.bin".into(), content(mb(100.0), 4), 0o644)]),
            "COPY data.bin /app/data.bin # buildkit",
        ),
        (
            layer(&[Entry::Dir("app"), Entry::Whiteout("app/data.bin".into())]),
            "RUN /bin/sh -c rm /app/data.bin # buildkit",
        ),
        (
            layer(&[Entry::Dir("opt"), Entry::File("opt/assets.bin".into(), assets, 0o644)]),
            "RUN /bin/sh -c cp /app/assets.bin /opt/assets.bin # buildkit",
        ),
        (
            layer(&[
                Entry::Dir("var"),
                Entry::Dir("var/lib"),
                Entry::Dir("var/lib/apt"),
                Entry::Dir("var/lib/apt/lists"),
                Entry::File("var/lib/apt/lists/deb_Packages".into(), content(mb(40.0), 6), 0o644),
                Entry::Dir("root"),
                Entry::Dir("root/.cache"),
                Entry::Dir("root/.cache/pip"),
                Entry::File("root/.cache/pip/wheel.whl".into(), content(mb(60.0), 7), 0o644),
                Entry::Dir("usr"),
                Entry::Dir("usr/include"),
                Entry::File("usr/include/python.h".into(), content(mb(10.0), 8), 0o644),
                Entry::Dir("usr/local"),
                Entry::Dir("usr/local/lib"),
                Entry::File("usr/local/lib/app.so".into(), content(mb(50.0), 9), 0o755),
            ]),
            "RUN /bin/sh -c apt-get update && apt-get install -y libpq-dev && pip install -r requirements.txt # buildkit",
        ),
        (
            layer(&[
                Entry::Dir("app"),
                Entry::Dir("app/src"),
                Entry::Dir("app/src/.git"),
                Entry::File("app/src/.git/pack".into(), content(mb(20.0), 10), 0o644),
                Entry::Dir("app/src/tests"),
                Entry::File("app/src/tests/test_all.py".into(), content(mb(10.0), 11), 0o644),
                Entry::File("app/src/main.py".into(), content(mb(5.0), 12), 0o644),
            ]),
            "COPY src/ /app/src/ # buildkit",
        ),
        (
            layer(&[Entry::Dir("app"), Entry::File("app/config.bin".into(), content(mb(30.0), 13), 0o644)]),
            "COPY config.bin /app/config.bin # buildkit",
        ),
    ];
    let dockerfile = "FROM bench-base:latest\nCOPY app/ /app/\nRUN chmod 600 /app/model.bin\nCOPY data.bin /app/data.bin\nRUN rm /app/data.bin\nRUN cp /app/assets.bin /opt/assets.bin\nRUN apt-get update && apt-get install -y libpq-dev && pip install -r requirements.txt\nCOPY src/ /app/src/\nCOPY config.bin /app/config.bin\n";
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let planted = format!(
        "metadata_only {} 2 3\nduplicate {} 6 2\ndeleted {} 4 5\npackage_cache(pip) {} 7 -\npackage_cache(apt) {} 7 -\noverwritten {} 2 9\nvcs {} 8 -\ntoolchain(headers) {} 7 -\ncontext(tests) {} 8 -\n",
        mb(250.0), mb(150.0), mb(100.0), mb(60.0), mb(40.0), mb(30.0), mb(20.0), mb(10.0), mb(10.0)
    );
    std::fs::write(dir.join("planted.txt"), planted).unwrap();

    let diff_ids: Vec<String> = layers
        .iter()
        .map(|(l, _)| format!("sha256:{}", hex(l)))
        .collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .map(|(_, by)| match *by {
            "" => serde_json::json!({"comment": "Imported from -"}),
            by => serde_json::json!({"created_by": by, "comment": "buildkit.dockerfile.v0"}),
        })
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["python", "/app/src/main.py"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap();

    // docker save, Docker 20.10's layout.
    let file = std::fs::File::create(dir.join("image.tar")).unwrap();
    let mut out = tar::Builder::new(std::io::BufWriter::new(file));
    let mut put = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        out.append_data(&mut h, name, data).unwrap();
    };
    let mut names = Vec::new();
    for (i, (l, _)) in layers.iter().enumerate() {
        let id = hex(format!("layer{i}").as_bytes());
        put(&format!("{id}/layer.tar"), l);
        names.push(format!("{id}/layer.tar"));
    }
    let config_name = format!("{}.json", hex(&config));
    put(&config_name, &config);
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["bench-size:latest"], "Layers": names}
    ]))
    .unwrap();
    put("manifest.json", &manifest);
    out.into_inner().unwrap().flush().unwrap();

    // The OCI layout, gzip layers compressed on two threads.
    let blobs = dir.join("oci/blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let gz: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = layers
            .chunks(layers.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(l, _)| {
                            let mut e = flate2::write::GzEncoder::new(
                                Vec::new(),
                                flate2::Compression::default(),
                            );
                            e.write_all(l).unwrap();
                            e.finish().unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut descs = Vec::new();
    for g in &gz {
        std::fs::write(blobs.join(hex(g)), g).unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", hex(g)), "size": g.len()}));
    }
    std::fs::write(blobs.join(hex(&config)), &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", hex(&config)), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    std::fs::write(blobs.join(hex(&manifest)), &manifest).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", hex(&manifest)), "size": manifest.len(),
        "platform": {"os": "linux", "architecture": "amd64"}}]});
    std::fs::write(
        dir.join("oci/index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("oci/oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let total: usize = layers.iter().map(|(l, _)| l.len()).sum();
    let gz_total: usize = gz.iter().map(Vec::len).sum();
    eprintln!(
        "gen-image: {total} bytes of layers ({gz_total} gzip) in {}",
        dir.display()
    );
}
