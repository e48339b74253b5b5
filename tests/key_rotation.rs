//! The key rotation drill, end to end with the real gateway: add a key, switch signing to it,
//! retire the old key at a date. Links signed with the retired key stop working at that second
//! (the uniform 404); links signed with any other key never break.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn rebase(gw: &Gateway, url: &str) -> String {
    gw.url(&url[url.find("/s/").expect("a share URL")..])
}

#[test]
fn a_retired_key_stops_its_links_at_the_date_and_no_other_link_breaks() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("state.db");

    // Before: k1 signs. (Step 1 of the drill, adding k2 to [keys.secrets], is in every config here.)
    let gw = Gateway::start_with(GatewayOptions {
        db: Some(db.clone()),
        ..GatewayOptions::for_origin(&origin)
    });
    let (old_id, old_url) = gw.admin().share("a.txt", None);
    drop(gw.stop());

    // Step 2: switch signing to k2. Old links keep working.
    let gw = Gateway::start_with(GatewayOptions {
        db: Some(db.clone()),
        signing: "k2",
        ..GatewayOptions::for_origin(&origin)
    });
    let (_, new_url) = gw.admin().share("a.txt", None);
    assert_eq!(get(&rebase(&gw, &old_url)).status, 200);
    drop(gw.stop());

    // Step 3: retire k1 a few seconds from now.
    let retire_at =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::from_secs(4);
    let extra = format!(
        "[keys.retire]\nk1 = \"{}\"\n",
        retire_at.format(&Rfc3339).unwrap()
    );
    let gw = Gateway::start_with(GatewayOptions {
        db: Some(db.clone()),
        signing: "k2",
        extra,
        ..GatewayOptions::for_origin(&origin)
    });
    let old = rebase(&gw, &old_url);
    let new = rebase(&gw, &new_url);
    assert!(
        OffsetDateTime::now_utc() < retire_at,
        "the gateway took too long to start for this test"
    );
    assert_eq!(
        get(&old).status,
        200,
        "before the date, a k1 link still works"
    );
    assert_eq!(get(&new).status, 200);

    let deadline = Instant::now() + Duration::from_secs(10);
    while OffsetDateTime::now_utc() < retire_at {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let dead = get(&old);
    let unknown =
        get(&gw.url("/s/AQJrMQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(dead.status, 404, "from the date on, a k1 link is dead");
    assert_eq!(dead.body, unknown.body, "and looks like any unknown link");
    assert_eq!(
        get(&format!("{old}/a.txt")).status,
        404,
        "with a cosmetic name too"
    );
    assert_eq!(get(&new).status, 200, "k2 links never break");
    let (_, fresh) = gw.admin().share("a.txt", None);
    assert_eq!(get(&fresh).status, 200, "new links keep working");
    let shown = gw.admin().link(&old_id);
    assert_eq!(
        shown["state"], "active",
        "the record is untouched; only its key is gone"
    );
    assert!(
        shown["url"].is_null(),
        "the admin API no longer hands out the dead URL: {shown}"
    );
}

#[test]
fn the_signing_key_cannot_be_retired() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let text = std::fs::read_to_string(&gw.config_path).unwrap()
        + "[keys.retire]\nk1 = \"2030-01-01T00:00:00Z\"\n";
    let bad = gw.dir.path().join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    let message =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        message.contains("keys.retire.k1") && message.contains("signing"),
        "{message}"
    );
}
