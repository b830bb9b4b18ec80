//! One bounded worker pool for the I/O-bound stages (downloads, header
//! reads): `jobs` scoped threads take items in input order from a shared
//! counter, and results come back in input order whatever finishes first,
//! so messages and outputs stay deterministic. Scoped threads borrow the
//! caller's data; no channel, no global pool (rayon's would size itself to
//! the CPUs, but these stages wait on the network, and `--jobs` is the
//! user's bound on connections).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// `work(index, item)` for every item of `items`, at most `jobs` at a time
/// (0 is taken as 1). Once a result satisfies `stop`, no further item is
/// started; items never started are `None`. Results are in input order.
pub fn map<T, R>(
    items: &[T],
    jobs: usize,
    stop: impl Fn(&R) -> bool + Sync,
    work: impl Fn(usize, &T) -> R + Sync,
) -> Vec<Option<R>>
where
    T: Sync,
    R: Send,
{
    let next = AtomicUsize::new(0);
    let stopped = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(items.len()) {
            s.spawn(|| loop {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else {
                    return;
                };
                let result = work(index, item);
                if stop(&result) {
                    stopped.store(true, Ordering::Relaxed);
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn results_come_back_in_input_order_with_at_most_jobs_running() {
        let running = AtomicUsize::new(0);
        let widest = AtomicUsize::new(0);
        let items: Vec<u64> = (0..24).collect();
        let out = map(
            &items,
            3,
            |_| false,
            |i, &n| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                widest.fetch_max(now, Ordering::SeqCst);
                // Later items finish first.
                std::thread::sleep(Duration::from_millis(24 - n));
                running.fetch_sub(1, Ordering::SeqCst);
                (i, n * 10)
            },
        );
        let want: Vec<Option<(usize, u64)>> = (0..24).map(|n| Some((n as usize, n * 10))).collect();
        assert_eq!(out, want);
        assert_eq!(widest.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_stopping_result_starts_nothing_new() {
        let items: Vec<u32> = (0..100).collect();
        let out = map(
            &items,
            1,
            |r: &Result<u32, u32>| r.is_err(),
            |_, &n| {
                if n == 5 {
                    Err(n)
                } else {
                    Ok(n)
                }
            },
        );
        assert_eq!(out[5], Some(Err(5)));
        assert!(out[..5].iter().all(|r| matches!(r, Some(Ok(_)))));
        assert!(
            out[6..].iter().all(Option::is_none),
            "one worker: nothing after the error"
        );
        assert!(map(&[] as &[u8], 4, |_: &()| false, |_, _| ()).is_empty());
        assert_eq!(map(&[7], 0, |_| false, |_, &n| n), [Some(7)], "jobs 0 is 1");
    }
}
