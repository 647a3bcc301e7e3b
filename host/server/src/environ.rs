//! Forgetting secrets the server has read from its environment.
//!
//! `serve` reads the webhook secrets and the registry password once, at
//! start. Left in the environment they would sit in `/proc/PID/environ`
//! for anyone who can read it (the process is non-dumpable, so that is
//! root, but also every core dump and every child that inherits it).
//! Unsetting a variable is not enough: `/proc/PID/environ` shows the
//! environment block the kernel set up at `exec`, whatever `environ`
//! points to since. So the value is overwritten in place first, then the
//! variable is removed.
//!
//! What it must not touch: anything but the named variables.

/// Overwrite and remove each of `names` from this process's environment.
///
/// # Safety
/// No other thread may read or change the environment meanwhile: call it
/// while the process is single-threaded.
pub unsafe fn forget(names: &[&str]) {
    extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    for name in names {
        let prefix = format!("{name}=");
        // SAFETY: `environ` is the NULL-terminated array of NUL-terminated
        // strings libc keeps; nothing else touches it (the caller's
        // promise). Writing zeros over a value keeps every string
        // NUL-terminated.
        unsafe {
            let mut entry = environ;
            while !entry.is_null() && !(*entry).is_null() {
                let s = *entry;
                let bytes = std::ffi::CStr::from_ptr(s).to_bytes();
                if bytes.starts_with(prefix.as_bytes()) {
                    let value = s.add(prefix.len());
                    std::ptr::write_bytes(value, 0, bytes.len() - prefix.len());
                }
                entry = entry.add(1);
            }
        }
        std::env::remove_var(name);
    }
}
