//! vCards between the softphone and another producer, python3-vobject (Debian's vCard
//! library): the address book vobject writes (vCard 3.0: folded lines, escaped `;` and
//! `,`, TYPE parameters, N/FN/ORG, several numbers, CATEGORIES) is imported by
//! `importvcard` and listed field by field by `listcontacts`; what `exportvcard` writes
//! (vCard 4.0) is read back by vobject with the same names, numbers and fields. The
//! script is `tests/interop/peers/vcards_vobject.py`.

use std::process::Command;

use webphone_interop::flows::WAIT;
use webphone_interop::ftp::PYTHON;
use webphone_interop::{peers_dir, require_present, serial, Cli, TestDir};

/// Runs the vobject script; its standard output.
fn vobject(args: &[&str]) -> String {
    let script = peers_dir().join("vcards_vobject.py");
    let out = Command::new(PYTHON)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON} {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "vobject {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 from vobject")
}

fn have_vobject() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import vobject"])
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: &[&str] = if ok { &[] } else { &["python3-vobject"] };
    require_present("vcard_vobject", missing)
}

#[test]
fn vcards_written_by_vobject_import_and_our_export_reads_back_in_vobject() {
    let _serial = serial();
    if !have_vobject() {
        return;
    }
    let dir = TestDir::new("vcard_vobject");
    let theirs = dir.join("vobject.vcf");
    let ours = dir.join("exported.vcf");
    vobject(&["make", theirs.to_str().unwrap()]);

    let data = dir.join("profile-data");
    let mut cli = Cli::start_with_args(
        dir.path(),
        &[("audiodevicein", "null")],
        &["--callbacks", "--work-dir", data.to_str().unwrap()],
    );
    assert_eq!(
        cli.api(&format!("importvcard {}", theirs.display()), WAIT)
            .as_deref(),
        Ok("3")
    );
    let mark = cli.mark();
    cli.api_ok("listcontacts");
    // The export's answer comes after every line of the listing.
    assert_eq!(
        cli.api(&format!("exportvcard {}", ours.display()), WAIT)
            .as_deref(),
        Ok("3")
    );
    let listing: Vec<String> = cli.lines()[mark..]
        .iter()
        .map(|l| l.trim_start_matches("RESULT,listcontacts,").to_string())
        .collect();
    let row = |name: &str| -> Vec<String> {
        listing
            .iter()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} not listed: {listing:#?}"))
            .trim_end_matches('\r')
            .split('\t')
            .map(str::to_string)
            .collect()
    };
    // name, numbers, favourite, email, address, notes, website
    assert_eq!(
        row("Zoë Ångström, PhD"),
        [
            "Zoë Ångström, PhD",
            "+36 1 234 5678|1002",
            "1",
            "zoe@example.org",
            "Fő utca 1, Budapest, 1011, Hungary",
            "Prefers calls in the morning; speaks Hungarian, English and Swedish. Ask for the \
             project line first.",
            "https://example.org/zoe",
        ]
    );
    assert_eq!(row("Chidi Okafor")[..3], ["Chidi Okafor", "1003", "0"]);
    assert_eq!(
        row("Reception <Desk> & \"Lobby\"")[..3],
        ["Reception <Desk> & \"Lobby\"", "+44 20 7946 0000", "0"]
    );
    cli.quit();

    // vobject reads our vCard 4.0 back: the same cards.
    let back: serde_json::Value =
        serde_json::from_str(&vobject(&["read", ours.to_str().unwrap()])).expect("JSON");
    let cards = back.as_array().expect("a list of cards");
    assert_eq!(cards.len(), 3, "{back}");
    let card = |name: &str| {
        cards
            .iter()
            .find(|c| c["fn"] == name)
            .unwrap_or_else(|| panic!("{name} not in the export: {back}"))
    };
    let zoe = card("Zoë Ångström, PhD");
    assert_eq!(zoe["tel"], serde_json::json!(["+36 1 234 5678", "1002"]));
    assert_eq!(zoe["email"], "zoe@example.org");
    assert_eq!(zoe["url"], "https://example.org/zoe");
    assert_eq!(
        zoe["note"],
        "Prefers calls in the morning; speaks Hungarian, English and Swedish. Ask for the \
         project line first."
    );
    assert!(
        zoe["categories"]
            .as_array()
            .is_some_and(|c| c.iter().any(|k| k == "Favorites")),
        "{zoe}"
    );
    assert_eq!(card("Chidi Okafor")["tel"], serde_json::json!(["1003"]));
    assert_eq!(
        card("Reception <Desk> & \"Lobby\"")["tel"],
        serde_json::json!(["+44 20 7946 0000"])
    );
}
