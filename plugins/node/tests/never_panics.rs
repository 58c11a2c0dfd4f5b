//! Property: no file content, file name or exclusion pattern makes collection panic, and every
//! enabled collector is always reported.

mod support;

use node::{Collector, Config, MemFs, VecSink, collect, pattern::glob_match};
use proptest::prelude::*;

/// Every file the collectors read on the Pi 4 fixture.
const PATHS: &[&str] = &[
    "/proc/stat",
    "/proc/meminfo",
    "/proc/loadavg",
    "/proc/diskstats",
    "/proc/net/dev",
    "/proc/1/mounts",
    "/proc/sys/kernel/ostype",
    "/run/udev/data/b179:0",
    "/sys/class/net/eth0/statistics/rx_nohandler",
    "/sys/devices/virtual/thermal/thermal_zone0/temp",
    "/sys/devices/virtual/thermal/thermal_zone0/type",
    "/sys/devices/virtual/thermal/cooling_device0/cur_state",
    "/sys/devices/virtual/thermal/thermal_zone0/hwmon0/temp1_input",
    "/sys/devices/virtual/thermal/thermal_zone0/hwmon0/name",
    "/sys/devices/platform/soc/soc:firmware/get_throttled",
];

/// Bytes that look like kernel text often enough to get past the first checks.
fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[a-z0-9():_ \\t\\n.-]{0,200}".prop_map(String::into_bytes),
        "([a-z]{1,6}[0-9]? ([0-9]{1,20} ){0,20}\\n){0,6}".prop_map(String::into_bytes),
    ]
}

fn check_report(fs: &mut MemFs) {
    let mut sink = VecSink::default();
    let report = collect(&Config::default(), fs, &mut sink);
    assert_eq!(report.outcomes.len(), Collector::ALL.len());
    assert_eq!(
        sink.family("node_scrape_collector_success").count(),
        Collector::ALL.len()
    );
}

proptest! {
    #[test]
    fn arbitrary_file_content(which in 0..PATHS.len(), bytes in content()) {
        let mut fs = support::pi4();
        fs.file(PATHS[which], &bytes);
        check_report(&mut fs);
    }

    #[test]
    fn arbitrary_content_everywhere(files in proptest::collection::vec(content(), PATHS.len())) {
        let mut fs = support::pi4();
        for (path, bytes) in PATHS.iter().zip(&files) {
            fs.file(path, bytes);
        }
        check_report(&mut fs);
    }

    #[test]
    fn arbitrary_sensor_file_names(name in "[a-z_0-9\\PC]{1,30}", value in "[0-9a-z.-]{0,12}") {
        let mut fs = support::pi4();
        let path = format!("/sys/devices/virtual/thermal/thermal_zone0/hwmon0/{name}");
        fs.file(&path, value);
        check_report(&mut fs);
    }

    #[test]
    fn arbitrary_patterns(pattern in "[a-z*?#\\[\\]-]{0,24}", text in "[a-z0-9\\PC]{0,24}") {
        // Only termination and absence of panics are checked; `*` must match anything.
        let _ = glob_match(&pattern, &text);
        prop_assert!(glob_match("*", &text));
    }
}
