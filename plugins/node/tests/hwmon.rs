//! hwmon naming and scaling beyond the Raspberry Pi's two sensors: a PC-style chip with labels,
//! limits, alarms, fans, power, current, energy and humidity.

mod support;

use node::{Collector, Config, MemFs, MetricType, VecSink, collect};
use support::{expected, render};

#[test]
fn every_sensor_type_gets_node_exporters_name_and_unit() {
    let dev = "/sys/devices/platform/nct6775.656";
    let hw = format!("{dev}/hwmon/hwmon3");
    let mut fs = MemFs::new();
    fs.link("/sys/class/hwmon/hwmon3", &hw)
        .link(&format!("{hw}/device"), dev)
        .file(&format!("{hw}/name"), "nct6798\n")
        .file(&format!("{hw}/temp1_input"), "38500\n")
        .file(&format!("{hw}/temp1_max"), "80000\n")
        .file(&format!("{hw}/temp1_crit_alarm"), "0\n")
        .file(&format!("{hw}/temp1_type"), "4\n")
        .file(&format!("{hw}/temp1_label"), "SYSTIN\n")
        .file(&format!("{hw}/in0_input"), "1032\n")
        .file(&format!("{hw}/in0_beep"), "1\n")
        .file(&format!("{hw}/fan2_input"), "1250\n")
        .file(&format!("{hw}/fan2_min"), "300\n")
        .file(&format!("{hw}/fan2_pulses"), "2\n")
        .file(&format!("{hw}/pwm2"), "128\n")
        .file(&format!("{hw}/pwm2_enable"), "5\n")
        .file(&format!("{hw}/curr1_input"), "1500\n")
        .file(&format!("{hw}/power1_input"), "12500000\n")
        .file(&format!("{hw}/power1_accuracy"), "50000\n")
        .file(&format!("{hw}/power1_average_interval"), "1000\n")
        .file(&format!("{hw}/energy1_input"), "3600000000\n")
        .file(&format!("{hw}/humidity1_input"), "45000000\n")
        .file(&format!("{hw}/intrusion0_alarm"), "1\n")
        .file(&format!("{hw}/beep_enable"), "1\n")
        .file(&format!("{hw}/update_interval"), "2000\n")
        .file(&format!("{hw}/temp2_input"), "not a number\n")
        .file(&format!("{hw}/uevent"), "DRIVER=nct6775\n");
    let cfg = Config {
        collectors: vec![Collector::Hwmon],
        ..Config::default()
    };
    let mut sink = VecSink::default();
    assert!(collect(&cfg, &mut fs, &mut sink).succeeded(Collector::Hwmon));

    // The chip is named after its device: bus `platform`, device `nct6775.656`.
    let want = expected(
        r#"
        node_hwmon_beep_enabled{chip="platform_nct6775_656",sensor="beep_enable0"} 1
        node_hwmon_chip_names{chip="platform_nct6775_656",chip_name="nct6798"} 1
        node_hwmon_curr_amps{chip="platform_nct6775_656",sensor="curr1"} 1.5
        node_hwmon_energy_joule_total{chip="platform_nct6775_656",sensor="energy1"} 3600
        node_hwmon_fan_min_rpm{chip="platform_nct6775_656",sensor="fan2"} 300
        node_hwmon_fan_pulses{chip="platform_nct6775_656",sensor="fan2"} 2
        node_hwmon_fan_rpm{chip="platform_nct6775_656",sensor="fan2"} 1250
        node_hwmon_humidity{chip="platform_nct6775_656",sensor="humidity1"} 45
        node_hwmon_in_beep_enabled{chip="platform_nct6775_656",sensor="in0"} 1
        node_hwmon_in_volts{chip="platform_nct6775_656",sensor="in0"} 1.032
        node_hwmon_intrusion_alarm{chip="platform_nct6775_656",sensor="intrusion0"} 1
        node_hwmon_power_accuracy{chip="platform_nct6775_656",sensor="power1"} 0.05
        node_hwmon_power_average_interval_seconds{chip="platform_nct6775_656",sensor="power1"} 1
        node_hwmon_power_watt{chip="platform_nct6775_656",sensor="power1"} 12.5
        node_hwmon_pwm{chip="platform_nct6775_656",sensor="pwm2"} 128
        node_hwmon_pwm_enable{chip="platform_nct6775_656",sensor="pwm2"} 5
        node_hwmon_sensor_label{chip="platform_nct6775_656",sensor="temp1",label="SYSTIN"} 1
        node_hwmon_temp_celsius{chip="platform_nct6775_656",sensor="temp1"} 38.5
        node_hwmon_temp_crit_alarm_celsius{chip="platform_nct6775_656",sensor="temp1"} 0
        node_hwmon_temp_max_celsius{chip="platform_nct6775_656",sensor="temp1"} 80
        node_hwmon_temp_type{chip="platform_nct6775_656",sensor="temp1"} 4
        node_hwmon_update_interval_seconds{chip="platform_nct6775_656",sensor="update_interval0"} 2
        "#,
    );
    assert_eq!(render(&sink), want);
    let energy_kind = sink
        .metadata
        .iter()
        .find(|(n, _, _)| n == "node_hwmon_energy_joule_total")
        .map(|(_, k, _)| *k);
    assert_eq!(energy_kind, Some(MetricType::Counter));
}

#[test]
fn chips_without_a_device_fall_back_to_name_then_directory() {
    let mut fs = MemFs::new();
    fs.file("/sys/devices/virtual/hwmon/hwmon5/name", "ACPI Thermal!\n")
        .file("/sys/devices/virtual/hwmon/hwmon5/temp1_input", "30000\n")
        .file("/sys/devices/virtual/hwmon/hwmon6/temp1_input", "31000\n")
        .link(
            "/sys/class/hwmon/hwmon5",
            "/sys/devices/virtual/hwmon/hwmon5",
        )
        .link(
            "/sys/class/hwmon/hwmon6",
            "/sys/devices/virtual/hwmon/hwmon6",
        );
    let cfg = Config {
        collectors: vec![Collector::Hwmon],
        ..Config::default()
    };
    let mut sink = VecSink::default();
    assert!(collect(&cfg, &mut fs, &mut sink).succeeded(Collector::Hwmon));
    let want = expected(
        r#"
        node_hwmon_chip_names{chip="acpi_thermal",chip_name="acpi_thermal"} 1
        node_hwmon_temp_celsius{chip="acpi_thermal",sensor="temp1"} 30
        node_hwmon_temp_celsius{chip="hwmon6",sensor="temp1"} 31
        "#,
    );
    assert_eq!(render(&sink), want);
}

#[test]
fn an_input_next_to_a_bare_value_is_kept_apart() {
    let hw = "/sys/devices/virtual/thermal/thermal_zone1";
    let mut fs = MemFs::new();
    fs.link("/sys/class/hwmon/hwmon0", &format!("{hw}/hwmon0"))
        .link(&format!("{hw}/hwmon0/device"), hw)
        .file(&format!("{hw}/hwmon0/temp0_input"), "41000\n")
        .file(&format!("{hw}/temp"), "42000\n");
    let cfg = Config {
        collectors: vec![Collector::Hwmon],
        ..Config::default()
    };
    let mut sink = VecSink::default();
    collect(&cfg, &mut fs, &mut sink);
    let labels = [("chip", "thermal_thermal_zone1"), ("sensor", "temp0")];
    assert_eq!(sink.get("node_hwmon_temp_celsius", &labels), Some(42.0));
    assert_eq!(
        sink.get("node_hwmon_temp_input_celsius", &labels),
        Some(41.0)
    );
}
