//! `--storage` URLs without a server: the password is masked wherever the URL is shown, however
//! it is spelled (`/`, `?`, `:` or an encoded `@` in it, or a `password=` parameter); libpq's
//! `sslmode` values and `sslrootcert` are read, bad ones named, and the mode reaches the
//! connection (a listener here declines TLS); a refused connection is transient; no input
//! panics; the CLI names the flag and never prints the password, also when the URL comes from
//! FASTFC_STORAGE.

use fastfc::results::postgres::conn::{mask, PgUrl, Tls};

#[test]
fn the_password_is_masked_however_it_is_spelled() {
    for (url, want) in [
        (
            "postgresql://fastfc:s3cret@db:5432/studies",
            "postgresql://fastfc:***@db:5432/studies",
        ),
        (
            "postgresql://fastfc:pa/ss@db/studies?sslmode=require",
            "postgresql://fastfc:***@db/studies?sslmode=require",
        ),
        (
            "postgresql://fastfc:pa?ss:w0rd@db/x",
            "postgresql://fastfc:***@db/x",
        ),
        (
            "postgres://u:p%40ss@[::1]:5432/x?password=other&sslmode=disable",
            "postgres://u:***@[::1]:5432/x?password=***&sslmode=disable",
        ),
        ("postgresql://nobody@db/x", "postgresql://nobody@db/x"),
        (
            "postgresql://db/x?password=p/w",
            "postgresql://db/x?password=***",
        ),
    ] {
        assert_eq!(mask(url), want, "{url}");
        let shown = PgUrl::parse(url, "--storage").map(|u| u.shown);
        if let Ok(shown) = shown {
            assert_eq!(shown, want);
        }
    }
}

#[test]
fn sslmodes_and_bad_urls_are_named_without_the_password() {
    let parse = |u: &str| PgUrl::parse(u, "--storage");
    assert_eq!(parse("postgresql://u:p@h/d").unwrap().tls, Tls::Prefer);
    assert_eq!(
        parse("postgresql://u:p@h/d?sslmode=disable").unwrap().tls,
        Tls::Disable
    );
    assert_eq!(
        parse("postgresql://u:p@h/d?sslmode=require").unwrap().tls,
        Tls::Require
    );
    assert_eq!(
        parse("postgresql://u:p@h/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem")
            .unwrap()
            .tls,
        Tls::VerifyFull("/etc/ca x.pem".into())
    );
    assert_eq!(
        parse("postgresql://u:p@h/d?sslrootcert=/ca.pem&sslmode=verify-ca")
            .unwrap()
            .tls,
        Tls::VerifyCa("/ca.pem".into())
    );
    // A password with `?` in it does not start the query.
    assert_eq!(
        parse("postgresql://u:a?sslmode=x@h/d?sslmode=require")
            .unwrap()
            .tls,
        Tls::Require
    );
    for (url, needles) in [
        (
            "mysql://u:hunter2@h/d",
            &["--storage", "expected a PostgreSQL URL"][..],
        ),
        (
            "postgresql://u:hunter2@h/d?sslmode=sometimes",
            &["--storage", "sslmode=sometimes", "verify-full"][..],
        ),
        (
            "postgresql://u:hunter2@h/d?bogus=1",
            &["--storage", "invalid connection string"][..],
        ),
        (
            "postgresql://u:hunter2@h/d?sslmode=%1é",
            &["--storage", "sslmode="][..],
        ),
        ("postgresql://u:hunter2@/d", &["--storage", "no host"][..]),
    ] {
        let e = parse(url).unwrap_err().to_string();
        for n in needles {
            assert!(e.contains(n), "{url}: {e} lacks {n}");
        }
        assert!(!e.contains("hunter2"), "{url}: {e}");
    }
}

/// The URL's debug form is the masked one; a password that ends in `?` does not start the query;
/// a `%` with fewer than two characters after it is kept as it is.
#[test]
fn debug_forms_trailing_question_marks_and_short_escapes() {
    let parse = |u: &str| PgUrl::parse(u, "--storage").unwrap();
    assert_eq!(
        format!("{:?}", parse("postgresql://u:hunter2@h/d")),
        "PgUrl(postgresql://u:***@h/d)"
    );
    assert_eq!(
        parse("postgresql://u:hunter2?@h/d?sslmode=require").tls,
        Tls::Require
    );
    assert_eq!(
        parse("postgresql://u:p@h/d?sslmode=verify-ca&sslrootcert=ca%4").tls,
        Tls::VerifyCa("ca%4".into())
    );
    assert_eq!(
        parse("postgresql://u:p@h/d?sslmode=verify-ca&sslrootcert=ca%").tls,
        Tls::VerifyCa("ca%".into())
    );
}

/// A refused connection is worth another try (a worker reconnects), and its description names
/// the cause once.
#[test]
fn a_refused_connection_is_transient_and_described_once() {
    use fastfc::results::postgres::conn::{describe, transient};
    // Nothing listens on port 1.
    let e = postgres::Client::connect(
        "host=127.0.0.1 port=1 user=u connect_timeout=10",
        postgres::NoTls,
    )
    .map(|_| ())
    .unwrap_err();
    assert!(transient(&e), "{e}");
    let d = describe(&e);
    assert_eq!(d.matches("Connection refused").count(), 1, "{d}");
}

/// `sslmode` reaches the connection. A server that declines TLS (it answers the SSLRequest with
/// `N`): the default, `prefer`, goes on without TLS and sends its startup message; `require`
/// stops there; `disable` never asks for TLS.
#[test]
fn prefer_goes_on_without_tls_require_stops_and_disable_never_asks() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut after = vec![];
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 8];
            s.read_exact(&mut req).unwrap();
            // Length 8, then the SSLRequest code 80877103.
            assert_eq!(req, [0, 0, 0, 8, 4, 210, 22, 47]);
            s.write_all(b"N").unwrap();
            // What the client sends next: a startup message, or nothing (it hung up).
            let mut rest = [0u8; 256];
            after.push(s.read(&mut rest).unwrap_or(0));
        }
        // `disable`: the first message is the startup message, protocol 3.0.
        let (mut s, _) = listener.accept().unwrap();
        let mut first = [0u8; 8];
        s.read_exact(&mut first).unwrap();
        assert_eq!(first[4..], [0, 3, 0, 0], "disable asked for TLS");
        after
    });
    let connect = |mode: &str| {
        let url = format!("postgresql://u:hunter2@127.0.0.1:{port}/d{mode}");
        PgUrl::parse(&url, "--storage")
            .unwrap()
            .connect()
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let prefer = connect("");
    let require = connect("?sslmode=require");
    let disable = connect("?sslmode=disable");
    let after = server.join().unwrap();
    assert!(after[0] > 0, "prefer sent no startup message: {prefer}");
    assert_eq!(after[1], 0, "require went on without TLS: {require}");
    assert!(!prefer.contains("TLS"), "{prefer}");
    assert!(require.contains("TLS"), "{require}");
    for e in [&prefer, &require, &disable] {
        assert!(e.contains("--storage") && !e.contains("hunter2"), "{e}");
    }
}

fn fastfc(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fastfc"))
        .args(args)
        .env("FASTFC_NO_PROGRESS", "1")
        .env("FASTFC_NO_SYSTEM_DATA", "1")
        .env_remove("FASTFC_STORAGE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// Nothing listens on port 1: the connection fails fast, naming the flag and the masked URL.
#[test]
fn the_cli_names_the_flag_and_never_prints_the_password() {
    let url = "postgresql://fastfc:se/cr?et@127.0.0.1:1/db?sslmode=disable";
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out = out.to_str().unwrap();
    for (args, env) in [
        (
            vec![
                "search",
                "--strategy",
                "random",
                "--storage",
                url,
                "--study",
                "s",
                "--trials",
                "1",
                "--out",
                out,
            ],
            vec![],
        ),
        (
            vec!["worker", "--study", "s"],
            vec![("FASTFC_STORAGE", url)],
        ),
        (
            vec!["report", "--study", "s", "--out", out],
            vec![("FASTFC_STORAGE", url)],
        ),
    ] {
        let (code, text) = fastfc(&args, &env);
        assert_ne!(code, 0, "{args:?}: {text}");
        assert!(
            text.contains("--storage") && text.contains("fastfc:***@127.0.0.1:1"),
            "{args:?}: {text}"
        );
        assert!(
            !text.contains("se/cr?et") && !text.contains("cr?et"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }
    assert!(!std::path::Path::new(out).exists());
    // --lease below a second, --storage without --study, --study without a database.
    let (code, text) = fastfc(
        &["worker", "--storage", url, "--study", "s", "--lease", "0s"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        text.contains("--lease") && text.contains("at least 1s"),
        "{text}"
    );
    let (code, text) = fastfc(
        &[
            "search",
            "--strategy",
            "random",
            "--storage",
            url,
            "--trials",
            "1",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(text.contains("--storage: needs --study"), "{text}");
    let (code, text) = fastfc(&["report", "--study", "s"], &[]);
    assert_ne!(code, 0);
    assert!(
        text.contains("--study") && text.contains("--storage"),
        "{text}"
    );
    // The environment's URL is not shown in --help.
    let (_, text) = fastfc(&["worker", "--help"], &[("FASTFC_STORAGE", url)]);
    assert!(!text.contains("cr?et"), "{text}");
}
