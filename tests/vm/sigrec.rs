//! sigrec: the app for scripts/test-vm's signal scenarios. Blocks every
//! signal (1-64, 32-34 included: raw system calls, since both glibc and musl
//! refuse 32-34 in their wrappers), prints "sigrec ready pid=P", then one line
//! "sigrec got N" per signal it takes with rt_sigtimedwait, and exits 0 after
//! SIGTERM. Built per architecture with plain rustc (no crates).
use std::io::Write;

unsafe extern "C" {
    fn syscall(n: isize, ...) -> isize;
}

// (rt_sigprocmask, rt_sigtimedwait)
#[cfg(target_arch = "x86_64")]
const NR: (isize, isize) = (14, 128);
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64", target_arch = "loongarch64"))]
const NR: (isize, isize) = (135, 137);
#[cfg(any(target_arch = "x86", target_arch = "arm", target_arch = "s390x"))]
const NR: (isize, isize) = (175, 177);
#[cfg(target_arch = "powerpc64")]
const NR: (isize, isize) = (173, 176);

const SIG_BLOCK: isize = 0;
const SIGTERM: isize = 15;

fn main() {
    let all: u64 = !0;
    let null = std::ptr::null::<u8>();
    let r = unsafe { syscall(NR.0, SIG_BLOCK, &all as *const u64, null, 8isize) };
    if r != 0 {
        eprintln!("sigrec: rt_sigprocmask failed");
        std::process::exit(1);
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "sigrec ready pid={}", std::process::id());
    let _ = out.flush();
    loop {
        let sig = unsafe { syscall(NR.1, &all as *const u64, null, null, 8isize) };
        if sig <= 0 {
            continue;
        }
        let _ = writeln!(out, "sigrec got {sig}");
        let _ = out.flush();
        if sig == SIGTERM {
            std::process::exit(0);
        }
    }
}
