//! The payload decoders (gzip, bzip2, xz, lzma, zstd, none) behind a size
//! bound like the unpacker's: the first byte picks the compressor, the rest
//! is the stream. Any input must decode or fail; never panic or spin.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minibuild::rootfs::cpio::Bounded;
use minibuild::rootfs::payload::Compressor;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let c = Compressor::ALL[usize::from(pick) % Compressor::ALL.len()];
    let Ok(decoder) = c.decoder(stream) else {
        return;
    };
    let _ = std::io::copy(&mut Bounded::new(decoder, 1 << 20), &mut std::io::sink());
});
