//! File capabilities: rpm's `FILECAPS` text (`cap_net_raw=ep`, as written
//! by libcap's `cap_to_text`) to the `security.capability` xattr value the
//! kernel reads (`struct vfs_cap_data`, revision 2, little-endian).
//!
//! Grammar (capability(7), cap_from_text(3)): whitespace-separated clauses,
//! each `names` followed by one or more `op flags` pairs, where `names` is a
//! comma list (or `all`, or empty meaning all), `op` is `=`, `+` or `-`, and
//! `flags` are letters from `eip`.

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

/// Capability names in kernel bit order (linux/capability.h).
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot parse file capabilities `{text}`: {why}")]
pub struct CapsError {
    pub text: String,
    pub why: String,
}

/// Encode capability text as a `security.capability` value. `None` when the
/// text grants nothing (e.g. `=`), so no xattr should be written.
pub fn to_xattr(text: &str) -> Result<Option<Vec<u8>>, CapsError> {
    let err = |why: String| CapsError {
        text: text.to_string(),
        why,
    };
    // [effective, permitted, inheritable] as 64-bit masks.
    let mut sets = [0u64; 3];
    for clause in text.split_whitespace() {
        let op_at = clause
            .find(['=', '+', '-'])
            .ok_or_else(|| err(format!("clause `{clause}` has no operator")))?;
        let (names, mut rest) = clause.split_at(op_at);
        let mut mask = 0u64;
        if names.is_empty() || names == "all" {
            mask = (1u64 << NAMES.len()) - 1;
        } else {
            for name in names.split(',') {
                let name = name.to_ascii_lowercase();
                let bit = match NAMES.iter().position(|n| *n == name) {
                    Some(bit) => bit,
                    None => name
                        .parse::<usize>()
                        .ok()
                        .filter(|b| *b < 64)
                        .ok_or_else(|| err(format!("unknown capability `{name}`")))?,
                };
                mask |= 1 << bit;
            }
        }
        while let Some(op) = rest.chars().next() {
            let flags_end = rest[1..]
                .find(['=', '+', '-'])
                .map_or(rest.len(), |i| i + 1);
            let flags = &rest[1..flags_end];
            let mut which = [false; 3];
            for f in flags.chars() {
                match f {
                    'e' => which[0] = true,
                    'p' => which[1] = true,
                    'i' => which[2] = true,
                    other => return Err(err(format!("unknown flag `{other}`"))),
                }
            }
            if op == '=' {
                // `=` clears the named capabilities from all sets first.
                for set in sets.iter_mut() {
                    *set &= !mask;
                }
            }
            for (set, on) in sets.iter_mut().zip(which) {
                if on {
                    if op == '-' {
                        *set &= !mask;
                    } else {
                        *set |= mask;
                    }
                }
            }
            rest = &rest[flags_end..];
        }
    }
    let [effective, permitted, inheritable] = sets;
    if effective | permitted | inheritable == 0 {
        return Ok(None);
    }
    // The file format has a single effective bit: "raise all permitted
    // capabilities on exec" (libcap sets it when any effective bit is set).
    let magic = VFS_CAP_REVISION_2
        | if effective != 0 {
            VFS_CAP_FLAGS_EFFECTIVE
        } else {
            0
        };
    let mut out = Vec::with_capacity(20);
    for word in [
        magic,
        permitted as u32,
        inheritable as u32,
        (permitted >> 32) as u32,
        (inheritable >> 32) as u32,
    ] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    Ok(Some(out))
}

/// What a `security.capability` value grants, for reports: the names of
/// its permitted and inheritable capabilities (`cap_bit<N>` past the known
/// ones) and whether they are raised on exec. `None` for a value that is
/// not a revision 2 or 3 `vfs_cap_data`.
pub fn from_xattr(value: &[u8]) -> Option<(Vec<String>, bool)> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            value.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    let magic = word(0)?;
    // Revision 3 (namespaced, 24 bytes) only adds a root uid after these.
    if !matches!(magic & !VFS_CAP_FLAGS_EFFECTIVE, 0x0200_0000 | 0x0300_0000) {
        return None;
    }
    let granted = u64::from(word(1)? | word(2)?) | u64::from(word(3)? | word(4)?) << 32;
    let names = (0..64)
        .filter(|bit| granted & (1 << bit) != 0)
        .map(|bit| {
            NAMES
                .get(bit)
                .map_or(format!("cap_bit{bit}"), |n| n.to_string())
        })
        .collect();
    Some((names, magic & VFS_CAP_FLAGS_EFFECTIVE != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[u8]) -> Vec<u32> {
        v.chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn encodes_ping_and_newuidmap_caps() {
        // iputils ships `cap_net_raw=p` on ping; libcap's setcap writes
        // 02000000 00200000 00000000 00000000 00000000 for it.
        let v = to_xattr("cap_net_raw=p").unwrap().unwrap();
        assert_eq!(words(&v), [0x0200_0000, 1 << 13, 0, 0, 0]);
        let v = to_xattr("cap_setuid=ep").unwrap().unwrap();
        assert_eq!(words(&v), [0x0200_0001, 1 << 7, 0, 0, 0]);
        // High word: cap_bpf is bit 39.
        let v = to_xattr("cap_bpf,cap_perfmon+eip").unwrap().unwrap();
        assert_eq!(words(&v), [0x0200_0001, 0, 0, 0xC0, 0xC0]);
    }

    #[test]
    fn handles_multiple_clauses_and_removal() {
        let v = to_xattr("cap_chown,cap_kill=ep cap_kill-e+i")
            .unwrap()
            .unwrap();
        assert_eq!(words(&v), [0x0200_0001, 0b10_0001, 1 << 5, 0, 0]);
        assert_eq!(to_xattr("=").unwrap(), None);
        assert!(to_xattr("cap_bogus=ep").is_err());
        assert!(to_xattr("cap_chown").is_err());
    }

    #[test]
    fn decodes_what_it_encodes() {
        let v = to_xattr("cap_sys_admin,cap_bpf=ep").unwrap().unwrap();
        assert_eq!(
            from_xattr(&v),
            Some((vec!["cap_sys_admin".into(), "cap_bpf".into()], true))
        );
        let v = to_xattr("cap_net_raw=p").unwrap().unwrap();
        assert_eq!(from_xattr(&v), Some((vec!["cap_net_raw".into()], false)));
        assert_eq!(from_xattr(b"\x01\x00\x00\x01"), None);
        assert_eq!(from_xattr(&[0, 0, 0, 2]), None, "truncated");
    }
}
