//! The CLI's own contract, driven through the real binary: start-up validation, the
//! RESULT/ERROR lines, notification strings on stdout, and a clean exit.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_webphone-cli");

/// Runs the CLI with `args`, feeds `input` on stdin and returns (exit code, stdout, stderr).
fn run(args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_parameter_value_refuses_to_start() {
    let (code, stdout, stderr) = run(&["-p", "transport=9"], "quit\n");
    assert_eq!(code, 2, "stdout: {stdout}");
    assert!(stderr.contains("transport"), "stderr: {stderr}");
    assert!(stdout.is_empty(), "nothing may run: {stdout}");
}

#[test]
fn unknown_option_and_missing_config_file_refuse_to_start() {
    let (code, _, stderr) = run(&["--frobnicate"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("--frobnicate"));
    let (code, _, stderr) = run(&["--config", "/nonexistent/webphone.conf"], "");
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/webphone.conf"), "{stderr}");
}

#[test]
fn api_lines_get_result_or_error_lines_and_stdout_stays_clean() {
    let input = "setparameter displayname \"Jane, Doe\"\n\
                 getparameter displayname\n\
                 nosuchfunction 1 2\n\
                 dtmf \"12x\"\n\
                 call\n\
                 call \"unterminated\n\
                 setparameter transport 7\n\
                 getparameter transport\n\
                 isregistered\n\
                 isincall\n\
                 getstatus\n\
                 quit\n";
    let (code, stdout, _) = run(&["-p", "audiodevicein=null", "--callbacks"], input);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    for want in [
        "CALLBACK,onLoaded,[]",
        "START,api",
        "START,sip",
        "CALLBACK,onStart,[]",
        "RESULT,setparameter,OK",
        "RESULT,getparameter,Jane, Doe",
        "ERROR,nosuchfunction,unknown function",
        "RESULT,getparameter,-1",
        "RESULT,isregistered,false",
        "RESULT,isincall,false",
        "RESULT,getstatus,Ready",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{stdout}");
    }
    for prefix in [
        "ERROR,dtmf,",
        "ERROR,call,",
        "ERROR,-,unterminated",
        "ERROR,setparameter,",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "missing {prefix:?} in:\n{stdout}"
        );
    }
    // Every stdout line is a result, an error, a callback or a notification string.
    let known = [
        "RESULT,",
        "ERROR,",
        "CALLBACK,",
        "START,",
        "STATUS,",
        "EVENT,",
        "LOG,",
        "CDR,",
    ];
    for l in &lines {
        assert!(
            known.iter().any(|k| l.starts_with(k)),
            "unexpected stdout line {l:?}"
        );
    }
}

#[test]
fn echo_call_from_the_command_line_ends_with_a_cdr() {
    let input = "call echo\nhangup\nquit\n";
    let (code, stdout, _) = run(
        &["-p", "audiodevicein=null", "-p", "audiodeviceout=null"],
        input,
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("RESULT,call,1"), "{stdout}");
    assert!(stdout.contains("STATUS,1,CallConnect,echo,"), "{stdout}");
    let cdr = stdout
        .lines()
        .find(|l| l.starts_with("CDR,1,echo,"))
        .unwrap_or_else(|| panic!("no CDR in:\n{stdout}"));
    assert!(cdr.ends_with(",1,BYE"), "{cdr}");
}

#[test]
fn loglevel_5_adds_log_lines() {
    let input = "setparameter loglevel 5\ncall echo\nhangup\nquit\n";
    let (_, stdout, _) = run(
        &["-p", "audiodevicein=null", "-p", "audiodeviceout=null"],
        input,
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("LOG,EVENT,")),
        "{stdout}"
    );
}

#[test]
fn work_dir_keeps_settings_between_runs_but_not_the_password() {
    let dir = std::env::temp_dir().join(format!("webphone-cli-workdir-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let (code, out, _) = run(
        &["--work-dir", d, "-p", "audiodevicein=null"],
        "setparameter displayname Kim\nsetparameter password pw-123456\nquit\n",
    );
    assert_eq!(code, 0, "{out}");
    let (_, out, _) = run(
        &["--work-dir", d],
        "getparameter displayname\ngetparameter password\nquit\n",
    );
    assert!(out.contains("RESULT,getparameter,Kim"), "{out}");
    assert!(
        out.lines().any(|l| l == "RESULT,getparameter,"),
        "the password is not stored: {out}"
    );
    // Without --work-dir nothing was kept.
    let (_, out, _) = run(&[], "getparameter displayname\nquit\n");
    assert!(out.lines().any(|l| l == "RESULT,getparameter,"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vcard_files_import_into_the_profile_and_export_as_vcard_4() {
    let dir = std::env::temp_dir().join(format!("webphone-cli-vcard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    // A 3.0 file in ISO-8859-1 (not UTF-8): the CLI decodes the bytes itself.
    let mut bytes =
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Fran\xE7ois\r\nTEL:1002\r\nTEL:+3612345\r\n".to_vec();
    bytes.extend_from_slice(b"CATEGORIES:Favorites\r\nEND:VCARD\r\n");
    let src = dir.join("in.vcf");
    std::fs::write(&src, &bytes).unwrap();
    let dst = dir.join("out.vcf");
    let (code, out, _) = run(
        &["--work-dir", d, "-p", "audiodevicein=null"],
        &format!(
            "importvcard {}\nimportvcard {}\nimportvcard\nexportvcard {}\nquit\n",
            src.display(),
            dir.join("missing.vcf").display(),
            dst.display()
        ),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("RESULT,importvcard,1\n"), "{out}");
    assert!(
        out.contains("ERROR,importvcard,") && out.contains("missing.vcf"),
        "{out}"
    );
    assert!(
        out.contains("ERROR,importvcard,usage: importvcard FILE"),
        "{out}"
    );
    assert!(out.contains("RESULT,exportvcard,1\n"), "{out}");
    let text = std::fs::read_to_string(&dst).unwrap();
    assert_eq!(
        text,
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:François\r\nTEL:1002\r\nTEL:+3612345\r\n\
         CATEGORIES:Favorites\r\nEND:VCARD\r\n"
    );
    // Kept in the profile: the next run lists it.
    let (_, out, _) = run(&["--work-dir", d], "listcontacts\nquit\n");
    assert!(
        out.contains("RESULT,listcontacts,François\t1002|+3612345\t1\t"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
