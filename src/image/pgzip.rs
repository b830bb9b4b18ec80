//! Parallel, deterministic gzip: the pigz scheme on flate2.
//!
//! The uncompressed stream is cut into fixed-size chunks ([`CHUNK_SIZE`]).
//! Each chunk is compressed on its own, as raw deflate by a fresh compressor
//! at a fixed level, ending with a sync flush (an empty stored block, so the
//! chunk's output ends on a byte boundary and is not marked final); the last
//! chunk ends with the final block instead. Because no chunk refers back to
//! another, their outputs concatenate into one valid deflate stream, which
//! goes inside a single gzip member with a fixed header and the CRC-32 and
//! size of the whole input (computed here, on the writing thread, as the
//! bytes pass).
//!
//! The output therefore depends only on the input, the level and the chunk
//! size — never on the number of workers or on timing: workers only decide
//! *when* a chunk is compressed, and chunks are written back in order. One
//! worker gives the same bytes as eight; tests check that.
//!
//! The bytes also depend on the deflate implementation: flate2's zlib-rs
//! backend, chosen in Cargo.toml and pinned by Cargo.lock. Switching
//! backends would change every gzip layer digest, as changing
//! [`CHUNK_SIZE`] or the level would; tests/golden.rs pins them.
//!
//! Cost: each chunk starts with an empty window (pigz primes it with the
//! previous chunk's last 32 KiB; keeping chunks fully independent is
//! simpler), which loses matches across chunk boundaries: the benchmark's
//! 105 MB tree gives a 64.2 MB blob either way.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Uncompressed bytes per independently compressed chunk. Part of the
/// output format: changing it changes every layer digest.
pub const CHUNK_SIZE: usize = 1 << 20;

/// The gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS
/// 255 ("unknown"), so nothing about the host or the time leaks in.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A chunk for a worker: its position in the stream, its bytes, and whether
/// it is the last one.
type Job = (u64, Vec<u8>, bool);
/// A compressed chunk, by position.
type Done = (u64, io::Result<Vec<u8>>);

/// A `Write` that gzips into `inner` on `workers` threads; call
/// [`finish`](Self::finish) to write the end of the stream and get `inner`
/// back. With one worker everything happens on the calling thread.
pub struct ParGzWriter<W: Write> {
    inner: W,
    level: u32,
    chunk: Vec<u8>,
    crc: Crc,
    /// Chunks handed out so far (the next one's sequence number).
    sent: u64,
    /// Chunks written to `inner` so far.
    written: u64,
    /// Compressed chunks that arrived ahead of their turn.
    pending: BTreeMap<u64, Vec<u8>>,
    pool: Option<Pool>,
}

struct Pool {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
    /// Most chunks in flight at once (bounds memory to about
    /// 2 × limit × CHUNK_SIZE).
    limit: u64,
}

impl<W: Write> ParGzWriter<W> {
    /// Start a gzip stream at `level` (0–9) on `workers` threads (at least 1).
    pub fn new(mut inner: W, level: u32, workers: usize) -> io::Result<Self> {
        inner.write_all(&HEADER)?;
        let pool = (workers > 1).then(|| Pool::start(workers, level));
        Ok(ParGzWriter {
            inner,
            level,
            chunk: Vec::with_capacity(CHUNK_SIZE),
            crc: Crc::new(),
            sent: 0,
            written: 0,
            pending: BTreeMap::new(),
            pool,
        })
    }

    /// Compress the rest, write the gzip trailer, and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let last = std::mem::take(&mut self.chunk);
        self.submit(last, true)?;
        while self.written < self.sent {
            self.receive_one()?;
        }
        if let Some(mut pool) = self.pool.take() {
            pool.jobs = None; // closes the queue: the workers return
            for t in pool.threads {
                t.join()
                    .map_err(|_| io::Error::other("a gzip worker thread panicked"))?;
            }
        }
        // CRC-32 and ISIZE (the input size modulo 2^32), little-endian.
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.inner)
    }

    /// Hand `chunk` to a worker (or compress it here with one worker).
    fn submit(&mut self, chunk: Vec<u8>, last: bool) -> io::Result<()> {
        let seq = self.sent;
        self.sent += 1;
        match &self.pool {
            None => {
                let out = deflate_chunk(&chunk, self.level, last)?;
                self.write_in_order(seq, out)
            }
            Some(pool) => {
                let limit = pool.limit;
                pool.jobs
                    .as_ref()
                    .expect("the job queue is open until finish")
                    .send((seq, chunk, last))
                    .map_err(|_| io::Error::other("the gzip workers stopped"))?;
                while self.sent - self.written > limit {
                    self.receive_one()?;
                }
                Ok(())
            }
        }
    }

    /// Wait for one compressed chunk and write whatever is now in order.
    fn receive_one(&mut self) -> io::Result<()> {
        let pool = self.pool.as_ref().expect("only called with workers");
        let (seq, out) = pool
            .done
            .recv()
            .map_err(|_| io::Error::other("the gzip workers stopped"))?;
        self.write_in_order(seq, out?)
    }

    fn write_in_order(&mut self, seq: u64, out: Vec<u8>) -> io::Result<()> {
        self.pending.insert(seq, out);
        while let Some(out) = self.pending.remove(&self.written) {
            self.inner.write_all(&out)?;
            self.written += 1;
        }
        Ok(())
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK_SIZE - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.chunk.len() == CHUNK_SIZE {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_SIZE));
            self.submit(full, false)?;
        }
        Ok(n)
    }

    /// Buffered chunk bytes stay until the chunk is full: flushing early
    /// would change where chunks are cut, and so the output.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pool {
    fn start(workers: usize, level: u32) -> Pool {
        let limit = 2 * workers as u64;
        let (jobs, queue) = mpsc::sync_channel::<Job>(workers);
        let queue = Arc::new(Mutex::new(queue));
        let (done_tx, done) = mpsc::channel::<Done>();
        let threads = (0..workers)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let done_tx: Sender<Done> = done_tx.clone();
                std::thread::spawn(move || loop {
                    // The lock is held only while taking a job.
                    let job = queue.lock().map(|q| q.recv());
                    let Ok(Ok((seq, chunk, last))) = job else {
                        return; // queue closed (finish or drop)
                    };
                    let out = deflate_chunk(&chunk, level, last);
                    if done_tx.send((seq, out)).is_err() {
                        return; // the writer was dropped
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            done,
            threads,
            limit,
        }
    }
}

/// `data` as raw deflate from a fresh compressor: ending in a sync flush,
/// or, for the `last` chunk, in the final block.
fn deflate_chunk(data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity());
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => return Ok(out),
            // The flush is complete once the input is in and the
            // compressor stopped with room to spare.
            Status::Ok | Status::BufError if !last && all_in && out.len() < out.capacity() => {
                return Ok(out)
            }
            Status::Ok | Status::BufError => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    /// Compressible and incompressible parts, longer than a few chunks and
    /// not a multiple of the chunk size.
    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while out.len() < 3 * CHUNK_SIZE + 12_345 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (out.len() / 200_000) % 2 == 0 {
                out.extend_from_slice(format!("line {} of text {}\n", x % 500, x % 7).as_bytes());
            } else {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Write `data` in awkward pieces, so chunk cutting does not depend on
    /// how the caller's writes line up.
    fn gzip(data: &[u8], workers: usize) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), 6, workers).unwrap();
        for piece in data.chunks(77_777) {
            w.write_all(piece).unwrap();
            w.flush().unwrap();
        }
        w.finish().unwrap()
    }

    /// Decode a gzip stream with flate2's reader (an independent decoder).
    pub(crate) fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn output_is_the_same_with_any_number_of_workers_and_decodes() {
        let data = sample();
        let one = gzip(&data, 1);
        assert_eq!(gzip(&data, 2), one);
        assert_eq!(gzip(&data, 8), one);
        assert_eq!(gunzip(&one), data);
        assert!(one.len() < data.len() * 3 / 4, "it does compress");
        // one member: the trailer holds the CRC and size of all of it
        let mut crc = Crc::new();
        crc.update(&data);
        let n = one.len();
        assert_eq!(one[n - 8..n - 4], crc.sum().to_le_bytes());
        assert_eq!(one[n - 4..], (data.len() as u32).to_le_bytes());
        assert_eq!(one[..10], HEADER);
    }

    #[test]
    fn empty_and_exact_chunk_inputs() {
        for len in [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let a = gzip(&data, 1);
            assert_eq!(gzip(&data, 3), a, "len {len}");
            assert_eq!(gunzip(&a), data, "len {len}");
        }
    }

    #[test]
    fn gzip_tool_accepts_the_stream() {
        let data = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, gzip(&data, 4)).unwrap();
        let status = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&path)
            .status()
            .expect("gzip is installed");
        assert!(status.success());
    }

    #[test]
    fn dropping_unfinished_does_not_hang() {
        let mut w = ParGzWriter::new(Vec::new(), 6, 4).unwrap();
        w.write_all(&sample()).unwrap();
        drop(w);
    }
}
