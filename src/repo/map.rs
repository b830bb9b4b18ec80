//! A read-only private mapping of a parsed-metadata cache file: the
//! resolver's packages and capability index are read from it in place
//! (see `store.rs`), and pages are released once read.

/// A read-only private mapping of a whole file.
pub(super) struct Map {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned; `&[u8]` views of it are
// shared like any immutable buffer.
unsafe impl Send for Map {}
unsafe impl Sync for Map {}

impl Map {
    /// Map `len` bytes of `file` (its length when it was checked).
    ///
    /// A mapping is only sound while the file is not changed in place:
    /// minibuild never does that to a cache entry (it replaces entries by
    /// rename, which leaves a mapped inode alone), and whoever else can
    /// write the cache can change any answer anyway (it is not a trust
    /// boundary, see `parsed.rs`).
    pub(super) fn new(file: &std::fs::File, len: usize) -> std::io::Result<Map> {
        use std::os::fd::AsRawFd;
        if len == 0 {
            return Ok(Map {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh shared-nothing read-only mapping of an open file;
        // the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Map { ptr, len })
    }

    /// Drop the pages of `start..start + len` from the process (they stay
    /// in the page cache and come back on the next read): the file's bytes
    /// are read once per use, so keeping them mapped would only grow the
    /// resident set. (Without this, the kernel's fault-around maps 64 KB
    /// per touched page, and a resolve ends up with most of the file.)
    pub(super) fn release(&self, start: usize, len: usize) {
        const PAGE: usize = 4096;
        let from = start / PAGE * PAGE;
        let to = start.saturating_add(len).min(self.len);
        if self.len == 0 || from >= to {
            return;
        }
        // SAFETY: inside the mapping; on a private, never-written file
        // mapping MADV_DONTNEED only unmaps pages, whose contents a later
        // read faults back in unchanged from the file. Advice that fails
        // changes nothing.
        unsafe {
            libc::madvise(
                (self.ptr as *mut u8).add(from) as *mut libc::c_void,
                to - from,
                libc::MADV_DONTNEED,
            )
        };
    }

    pub(super) fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes until `drop`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping what `new` mapped, once.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}
