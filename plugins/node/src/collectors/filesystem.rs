//! `filesystem`: the mount table plus `statvfs` of each mount point.
//!
//! The table is `/proc/1/mounts` (the init process's view, which is the host's when the
//! collector runs in a container), falling back to `/proc/self/mounts`. Excluded mount points
//! and types are dropped before any `statvfs`, so slow network mounts that are excluded cost
//! nothing. A mount whose `statvfs` fails reports only `node_filesystem_device_error 1`; one the
//! host refuses is left out entirely, since that is configuration, not a device error.
//! `readonly` comes from the `ro` mount option, as in node_exporter.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use crate::config::join;
use crate::ctx::Ctx;
use crate::error::CollectError;
use crate::fs::FsError;
use crate::pattern::any_match;
use crate::sink::Out;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mount {
    pub(crate) device: String,
    pub(crate) mount_point: String,
    pub(crate) fs_type: String,
    pub(crate) options: String,
}

/// Parses a mounts file. Any line with fewer than four fields fails the file, as in
/// node_exporter. Spaces and tabs in mount points arrive octal-escaped.
pub(crate) fn parse_mounts(text: &str, path: &str) -> Result<Vec<Mount>, CollectError> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 4 {
            return Err(CollectError::parse(
                path,
                "mount line with fewer than 4 fields",
            ));
        }
        mounts.push(Mount {
            device: fields[0].into(),
            mount_point: fields[1].replace("\\040", " ").replace("\\011", "\t"),
            fs_type: fields[2].into(),
            options: fields[3].into(),
        });
    }
    Ok(mounts)
}

/// node_exporter's `rootfsStripPrefix`: the mount point as seen from the host's root.
fn strip_rootfs(rootfs: &str, mount_point: &str) -> String {
    if rootfs == "/" {
        return mount_point.into();
    }
    let stripped = mount_point
        .strip_prefix(rootfs.trim_end_matches('/'))
        .unwrap_or(mount_point);
    if stripped.is_empty() {
        "/".into()
    } else {
        stripped.into()
    }
}

fn read_mount_table(ctx: &mut Ctx<'_>) -> Result<Vec<Mount>, CollectError> {
    let primary = ctx.cfg.proc("1/mounts");
    let (path, text) = match ctx.read(&primary) {
        Ok(text) => (primary, text),
        // PID 1's table may be hidden (hidepid) or not granted; our own view is the next best.
        Err(CollectError::Fs {
            error: FsError::NotFound | FsError::Denied,
            ..
        }) => {
            let fallback = ctx.cfg.proc("self/mounts");
            let text = ctx.read(&fallback)?;
            (fallback, text)
        }
        Err(e) => return Err(e),
    };
    parse_mounts(&text, &path)
}

pub(crate) fn collect(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let mounts = read_mount_table(ctx)?;
    // A filesystem mounted twice at the same place (bind mounts, stacked mounts) is reported
    // once, by its first entry.
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    for m in mounts {
        let mount_point = strip_rootfs(&ctx.cfg.rootfs, &m.mount_point);
        if any_match(&ctx.cfg.mount_points_exclude, &mount_point)
            || any_match(&ctx.cfg.fs_types_exclude, &m.fs_type)
        {
            continue;
        }
        let key = (m.device.clone(), mount_point.clone(), m.fs_type.clone());
        if seen.contains(&key) {
            continue;
        }
        let stat_path = join(&ctx.cfg.rootfs, &mount_point);
        let stat = match ctx.fs().statvfs(&stat_path) {
            Ok(stat) => Some(stat),
            Err(FsError::Denied) => continue,
            Err(FsError::NotFound | FsError::Io) => None,
        };
        seen.insert(key);
        let labels = [
            ("device", m.device.as_str()),
            ("mountpoint", mount_point.as_str()),
            ("fstype", m.fs_type.as_str()),
        ];
        out.gauge(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
            &labels,
            if stat.is_some() { 0.0 } else { 1.0 },
        );
        let Some(s) = stat else { continue };
        let bsize = s.block_size as f64;
        let readonly = m.options.split(',').any(|o| o == "ro");
        for (name, help, value) in [
            (
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                s.blocks as f64 * bsize,
            ),
            (
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                s.blocks_free as f64 * bsize,
            ),
            (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                s.blocks_avail as f64 * bsize,
            ),
            (
                "node_filesystem_files",
                "Filesystem total file nodes.",
                s.files as f64,
            ),
            (
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                s.files_free as f64,
            ),
            (
                "node_filesystem_readonly",
                "Filesystem read-only status.",
                if readonly { 1.0 } else { 0.0 },
            ),
        ] {
            out.gauge(name, help, &labels, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_lines() {
        let m = parse_mounts(
            "/dev/mmcblk0p2 / ext4 rw,noatime 0 0\n/dev/sda1 /media/my\\040disk vfat ro 0 0\n",
            "m",
        )
        .unwrap();
        assert_eq!(m[1].mount_point, "/media/my disk");
        assert_eq!(m[1].options, "ro");
        assert!(parse_mounts("/dev/x /\n", "m").is_err());
    }

    #[test]
    fn rootfs_prefix_is_stripped() {
        assert_eq!(strip_rootfs("/", "/boot"), "/boot");
        assert_eq!(strip_rootfs("/host", "/host/boot"), "/boot");
        assert_eq!(strip_rootfs("/host/", "/host"), "/");
    }
}
