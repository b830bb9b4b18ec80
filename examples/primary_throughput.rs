//! Measure primary.xml parse throughput.
//!
//! ```text
//! cargo run --release --example primary_throughput -- PRIMARY[.gz|.xz|.zst] [COPIES]
//! ```
//!
//! The packages of PRIMARY are repeated COPIES times (default: enough for
//! ~120 MB of XML, the size of a Fedora Everything primary) to build one big
//! document in memory. It is then parsed from memory (parser only) and from
//! a zstd-compressed copy (decompression + parser, as `repo::load` does).

use std::io::{BufReader, Read};
use std::time::Instant;

use minibuild::repo::{decompress, primary};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: primary_throughput PRIMARY [COPIES]"))?;
    let copies: Option<usize> = args.next().map(|s| s.parse()).transpose()?;

    let file = std::fs::File::open(&path)?;
    let mut xml = String::new();
    decompress(&path, BufReader::new(file))?.read_to_string(&mut xml)?;
    let start = xml
        .find("<package ")
        .ok_or_else(|| anyhow::anyhow!("{path} has no <package>"))?;
    let end = xml
        .rfind("</metadata>")
        .ok_or_else(|| anyhow::anyhow!("{path} has no </metadata>"))?;
    let body = &xml[start..end];
    let copies = copies.unwrap_or_else(|| (120_000_000 / body.len().max(1)).max(1));

    let mut big = String::with_capacity(body.len() * copies + 512);
    big.push_str(&xml[..start]);
    for _ in 0..copies {
        big.push_str(body);
    }
    big.push_str("</metadata>\n");
    let mb = big.len() as f64 / 1e6;

    let t = Instant::now();
    let packages = primary::parse(big.as_bytes(), 0)?;
    let parse = t.elapsed().as_secs_f64();
    println!(
        "parse only:   {} packages, {mb:.1} MB XML in {parse:.2} s = {:.0} MB/s, {:.0} packages/s",
        packages.len(),
        mb / parse,
        packages.len() as f64 / parse
    );
    drop(packages);

    let zst = zstd::encode_all(big.as_bytes(), 3)?;
    let t = Instant::now();
    let reader = decompress("primary.xml.zst", BufReader::new(&zst[..]))?;
    let n = primary::parse(reader, 0)?.len();
    let total = t.elapsed().as_secs_f64();
    println!(
        "zstd + parse: {n} packages from {:.1} MB compressed in {total:.2} s = {:.0} MB/s of XML",
        zst.len() as f64 / 1e6,
        mb / total
    );
    Ok(())
}
