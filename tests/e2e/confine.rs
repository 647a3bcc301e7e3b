//! Granted programs stay inside the grants: a hostile guest (built from
//! source) runs qemu-img, cat and sh through `process.run` with arguments
//! of its choosing and tries every way out; each is denied, while the same
//! programs still do their work inside the grants.

use crate::{s, Home, Run};
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

/// `process.run(program, args)` from the hostile guest with `flags`.
fn run_program(home: &Home, argv: &[&str], flags: &[&str]) -> Run {
    home.hostile("run-program", &argv.join("\t"), flags)
}

/// The program's status, stdout and stderr, from a run that succeeded.
fn outcome(r: &Run) -> Value {
    r.ok();
    let result = r.json();
    serde_json::from_str(result.as_str().unwrap()).unwrap()
}

fn dir_with(name: &str, content: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(name), content).unwrap();
    d
}

#[test]
fn programs_read_and_write_only_their_grants() {
    let home = Home::new();
    let disks = tempfile::tempdir().unwrap();
    let readable = dir_with("data.txt", "inside the read grant\n");
    let w = [
        "--allow-exec",
        "qemu-img",
        "--allow-exec",
        "cat",
        "--allow-exec",
        "sh",
    ];
    let mut flags = w.to_vec();
    flags.extend([
        "--allow-write",
        s(disks.path()),
        "--allow-read",
        s(readable.path()),
    ]);

    // qemu-img copies a host file into the write grant: denied.
    let out_raw = disks.path().join("o.raw");
    let o = outcome(&run_program(
        &home,
        &[
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            "/etc/passwd",
            s(&out_raw),
        ],
        &flags,
    ));
    assert_ne!(o["status"], 0, "{o}");
    let copied = std::fs::read(&out_raw).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&copied).contains("root:"),
        "/etc/passwd reached the grant"
    );

    // cat of an outside file, a listing of an outside directory, a write
    // outside, the host process's environment: all denied.
    for argv in [
        vec!["cat", "/etc/passwd"],
        vec!["sh", "-c", "ls /etc"],
        vec!["sh", "-c", "cat /proc/$PPID/environ"],
        vec!["sh", "-c", "cat /proc/1/environ"],
        vec![
            "sh",
            "-c",
            &format!("echo x > {}/escaped", std::env::temp_dir().display()),
        ],
    ] {
        let o = outcome(&run_program(&home, &argv, &flags));
        assert_ne!(o["status"], 0, "{argv:?} must fail: {o}");
        assert!(
            !o["stdout"].as_str().unwrap().contains("root"),
            "{argv:?}: {o}"
        );
        assert!(
            !o["stdout"].as_str().unwrap().contains("PATH="),
            "{argv:?}: {o}"
        );
    }
    assert!(!std::env::temp_dir().join("escaped").exists());
    // The store's home is outside the grants too.
    let o = outcome(&run_program(
        &home,
        &["sh", "-c", &format!("ls {}", s(home.path()))],
        &flags,
    ));
    assert_ne!(o["status"], 0, "{o}");
    // qemu-img's vvfat driver exposing an outside directory: denied.
    let o = outcome(&run_program(
        &home,
        &["qemu-img", "info", "-f", "vvfat", "fat:ro:/etc"],
        &flags,
    ));
    assert_ne!(o["status"], 0, "{o}");

    // Inside the grants the same programs work.
    let disk = disks.path().join("x.qcow2");
    let o = outcome(&run_program(
        &home,
        &["qemu-img", "create", "-f", "qcow2", s(&disk), "1M"],
        &flags,
    ));
    assert_eq!(o["status"], 0, "{o}");
    let o = outcome(&run_program(&home, &["qemu-img", "info", s(&disk)], &flags));
    assert_eq!(o["status"], 0, "{o}");
    assert!(o["stdout"].as_str().unwrap().contains("qcow2"), "{o}");
    let data = readable.path().join("data.txt");
    let o = outcome(&run_program(&home, &["cat", s(&data)], &flags));
    assert_eq!(o["stdout"], "inside the read grant\n", "{o}");
    // A read grant is read-only for programs too.
    let o = outcome(&run_program(
        &home,
        &["sh", "-c", &format!("echo changed > {}", s(&data))],
        &flags,
    ));
    assert_ne!(o["status"], 0, "{o}");
    assert_eq!(
        std::fs::read_to_string(&data).unwrap(),
        "inside the read grant\n"
    );
    let o = outcome(&run_program(
        &home,
        &[
            "sh",
            "-c",
            &format!(
                "echo made > {}/made && cat {}/made",
                s(disks.path()),
                s(disks.path())
            ),
        ],
        &flags,
    ));
    assert_eq!(o["stdout"], "made\n", "{o}");
}

/// Whether `listener` got a connection within a short wait.
fn connected(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    for _ in 0..20 {
        if let Ok((mut c, _)) = listener.accept() {
            let mut b = [0u8; 1];
            let _ = c.set_read_timeout(Some(Duration::from_millis(10)));
            let _ = c.read(&mut b);
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn programs_reach_the_network_only_through_net_grants() {
    let home = Home::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = other.local_addr().unwrap().port();
    let nbd = format!("nbd://127.0.0.1:{port}");
    let exec = ["--allow-exec", "qemu-img"];

    // No net grant: no connection at all.
    let o = outcome(&run_program(&home, &["qemu-img", "info", &nbd], &exec));
    assert_ne!(o["status"], 0, "{o}");
    assert!(
        !connected(&listener),
        "a program connected without a net grant"
    );

    // A grant of one port: that port, not another.
    let grant = format!("127.0.0.1:{port}");
    let mut flags = exec.to_vec();
    flags.extend(["--allow-net", &grant, "--timeout", "5s"]);
    let _ = run_program(&home, &["qemu-img", "info", &nbd], &flags);
    assert!(connected(&listener), "the granted port is reachable");
    let o = outcome(&run_program(
        &home,
        &["qemu-img", "info", &format!("nbd://127.0.0.1:{other_port}")],
        &flags,
    ));
    assert_ne!(o["status"], 0, "{o}");
    assert!(
        !connected(&other),
        "a program reached a port it was not granted"
    );
}

fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(marker)
            })
            .unwrap_or(false)
    })
}

#[test]
fn a_program_and_everything_it_starts_are_stopped() {
    let home = Home::new();
    let flags = ["--allow-exec", "sh", "--timeout", "2s"];
    // On timeout: the shell and both of its sleeps.
    let r = run_program(&home, &["sh", "-c", "sleep 3172 & sleep 3173"], &flags);
    r.code(1);
    assert_eq!(home.last_record()["status"], "timed_out");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !running("sleep 3172"),
        "a background process outlived the execution"
    );
    assert!(!running("sleep 3173"));
    // When the program exits on its own, what it left in the background goes too.
    let o = outcome(&run_program(
        &home,
        &["sh", "-c", "sleep 3174 & echo started"],
        &flags,
    ));
    assert_eq!(o["stdout"], "started\n", "{o}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !running("sleep 3174"),
        "a background process outlived its program"
    );
}

#[test]
fn without_landlock_programs_are_refused_unless_allowed() {
    let home = Home::new();
    let flags = ["--allow-exec", "cat"];
    let mut cmd = home.hostile_cmd("run-program", "cat\t/etc/hostname", &flags);
    cmd.env("WASMFLOW_TEST_NO_LANDLOCK", "1");
    let r = Run::from(cmd.output().unwrap());
    r.code(1);
    let rec = home.last_record();
    assert_eq!(rec["error"]["code"], "unconfined", "{rec}");
    assert!(rec["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--allow-unconfined-exec"));
    let mut cmd = home.hostile_cmd(
        "run-program",
        "cat\t/etc/hostname",
        &["--allow-exec", "cat", "--allow-unconfined-exec"],
    );
    cmd.env("WASMFLOW_TEST_NO_LANDLOCK", "1");
    let r = Run::from(cmd.output().unwrap());
    let o = outcome(&r);
    assert_eq!(o["status"], 0, "allowed unconfined: {o}");
    assert_eq!(home.last_record()["grants"]["unconfined_exec"], true);
}

/// `/proc/PID/environ` of a process run as `nobody` with a secret in its
/// environment, read by another process of `nobody`.
fn environ_as_nobody(pid: u32) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "cat", &format!("/proc/{pid}/environ")])
        .output()
        .unwrap()
}

#[test]
fn the_host_process_is_not_dumpable() {
    // Root may read any process's memory; the promise is about processes
    // of the same (unprivileged) user, so both sides run as nobody.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test runs as root (CI does) to switch to nobody");
    }
    let home = tempfile::tempdir().unwrap();
    let actions = tempfile::tempdir().unwrap();
    std::fs::copy(crate::wat("add"), actions.path().join("add.wat")).unwrap();
    for d in [home.path(), actions.path()] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let spawn = |program: &str, args: &[&str]| {
        std::process::Command::new("runuser")
            .args([
                "-u",
                "nobody",
                "--",
                "env",
                "WASMFLOW_SECRET_PROBE=s3cr3t-probe",
            ])
            .arg(format!("WASMFLOW_HOME={}", s(home.path())))
            .arg(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wasmflow = env!("CARGO_BIN_EXE_wasmflow");
    let mut server = spawn(
        wasmflow,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--actions",
            s(actions.path()),
        ],
    );
    let mut lines = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("wasmflow serving") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut lines, &mut line).unwrap() > 0,
            "serve ended"
        );
    }
    // runuser -> env -> wasmflow: the server is the newest process named so.
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|exe| exe.to_string_lossy().ends_with("/wasmflow"))
                && std::fs::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|e| String::from_utf8_lossy(&e).contains("s3cr3t-probe"))
        })
        .max()
        .expect("the server's pid");
    let read = environ_as_nobody(pid);
    // The server itself, not only runuser: it would outlive the test.
    // SAFETY: a signal to the pid found above.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        !read.status.success(),
        "another process of the user read the server's environment"
    );
    assert!(!String::from_utf8_lossy(&read.stdout).contains("s3cr3t-probe"));
    // The same read of an ordinary process of that user works: the check
    // above can fail.
    let mut sleeper = spawn("sleep", &["30"]);
    // Ours is the `sleep 30` with the probe in its environment, once
    // runuser and env have exec'd it (a prefix match on the command line
    // also found other tests' `sleep 3172`, run as root, unreadable).
    let ours = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x0030\x00")
                    && std::fs::read(format!("/proc/{p}/environ"))
                        .is_ok_and(|e| String::from_utf8_lossy(&e).contains("s3cr3t-probe"))
            })
    };
    let at = std::time::Instant::now();
    let pid = loop {
        if let Some(pid) = ours() {
            break pid;
        }
        assert!(
            at.elapsed() < Duration::from_secs(30),
            "the sleeper never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = environ_as_nobody(pid);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(String::from_utf8_lossy(&read.stdout).contains("s3cr3t-probe"));
}

#[test]
fn no_udp_and_no_unix_sockets_without_a_net_grant() {
    let home = Home::new();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let port = udp.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("host.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    unix.set_nonblocking(true).unwrap();
    let python = "/usr/bin/python3";
    let send_udp = format!(
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port})); print('sent')"
    );
    let connect_unix = format!(
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}'); print('connected')",
        s(&sock_path)
    );
    let flags = ["--allow-exec", python];
    for (script, what) in [(&send_udp, "UDP"), (&connect_unix, "a UNIX socket")] {
        let o = outcome(&run_program(&home, &[python, "-c", script], &flags));
        assert_ne!(o["status"], 0, "{what} without a net grant: {o}");
        assert!(
            o["stderr"].as_str().unwrap().contains("Permission denied"),
            "{what}: {o}"
        );
    }
    let mut b = [0u8; 8];
    assert!(udp.recv(&mut b).is_err(), "a datagram got out");
    assert!(unix.accept().is_err(), "a program reached a UNIX socket");
    // With a net grant UDP is not filtered for programs (README says so);
    // UNIX sockets stay closed.
    let grant = format!("127.0.0.1:{port}");
    let with_net = ["--allow-exec", python, "--allow-net", &grant];
    let o = outcome(&run_program(&home, &[python, "-c", &send_udp], &with_net));
    assert_eq!(o["stdout"], "sent\n", "{o}");
    assert!(udp.recv(&mut b).is_ok());
    let o = outcome(&run_program(
        &home,
        &[python, "-c", &connect_unix],
        &with_net,
    ));
    assert_ne!(o["status"], 0, "{o}");
}
