//! Property tests: everything flowtop parses from outside (its command line, /proc
//! text, kernel BTF bytes, kernel task names) either parses or gives a clean error,
//! for any input, and never panics.
use clap::Parser as _;
use flowtop::{
    cli::Cli,
    dev::{cgroup2_mount_in, cgroup_dir, parse_cap_eff, Comm, KernelBtf},
};
use proptest::prelude::*;

/// Tokens that look like flowtop's flags and values, mixed with arbitrary strings.
fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-p".to_string()),
        Just("--pid".to_string()),
        Just("--format".to_string()),
        Just("--probe".to_string()),
        Just("--max-entries".to_string()),
        Just("--by".to_string()),
        Just("conn".to_string()),
        Just("-c".to_string()),
        Just("--cgroup".to_string()),
        Just("--port".to_string()),
        Just("-r".to_string()),
        Just("1,2,,3".to_string()),
        Just("--serve".to_string()),
        Just("--serve-public".to_string()),
        Just("0.0.0.0:99999".to_string()),
        Just("[::1]:9464".to_string()),
        Just("-v".to_string()),
        Just("json".to_string()),
        Just("table".to_string()),
        Just("tracepoint".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        "[0-9]{1,12}",
        "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_command_line_parses_or_is_a_usage_error(args in prop::collection::vec(arg(), 0..6)) {
        match Cli::try_parse_from(std::iter::once("flowtop".to_string()).chain(args)) {
            Ok(cli) => {
                prop_assert!(cli.interval >= 1);
                prop_assert!(cli.count.is_none_or(|c| c >= 1));
                prop_assert!(cli.pid.iter().all(|&p| p >= 1));
                prop_assert!(cli.max_entries >= 1);
            }
            // Usage errors exit 2; --help/--version (0) cannot be generated here.
            Err(e) => prop_assert_eq!(e.exit_code(), 2, "{}", e),
        }
    }

    #[test]
    fn proc_status_text_never_panics(text in "\\PC{0,200}", hex in "[0-9a-fA-F]{0,20}") {
        let _ = parse_cap_eff(&text);
        let parsed = parse_cap_eff(&format!("Name:\tx\nCapEff:\t{hex}\n"));
        if (1..=16).contains(&hex.len()) {
            prop_assert_eq!(parsed, Some(u64::from_str_radix(&hex, 16).unwrap()));
        }
    }

    #[test]
    fn task_names_are_cut_at_the_first_nul(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        let s = Comm::from_kernel(&bytes);
        prop_assert!(!s.contains('\0'));
        prop_assert!(s.len() <= bytes.len() * 3); // lossy UTF-8 may widen a byte to U+FFFD
    }

    #[test]
    fn arbitrary_bytes_are_not_btf(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(btf) = KernelBtf::from_bytes(bytes) {
            let _ = btf.field_offset("sock", &["sk_protocol"]);
        }
    }
}

/// The real kernel BTF with bytes flipped or cut: a clean error or a parse, no panic,
/// no endless loop. A kernel without BTF fails this test (it would prove nothing).
#[test]
fn damaged_kernel_btf_never_panics() {
    let real = std::fs::read("/sys/kernel/btf/vmlinux").unwrap_or_else(|e| {
        panic!("this test damages the kernel's own BTF: /sys/kernel/btf/vmlinux: {e}")
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(
            &(0..real.len(), any::<u8>(), prop::option::of(0..real.len())),
            |(pos, byte, cut)| {
                let mut damaged = real[..cut.unwrap_or(real.len()).max(64)].to_vec();
                if pos < damaged.len() {
                    damaged[pos] ^= byte | 1;
                }
                if let Ok(btf) = KernelBtf::from_bytes(damaged) {
                    let _ = btf.field_offset("sock", &["__sk_common", "skc_family"]);
                    let _ = btf.field_offset("task_struct", &["comm"]);
                }
                Ok(())
            },
        )
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// /proc/self/mountinfo lines of any shape: a mount point or none, never a panic;
    /// a well-formed cgroup2 line is always found, with `\ooo` escapes decoded.
    #[test]
    fn mountinfo_parsing_never_panics(text in "\\PC{0,300}", esc in "(\\\\[0-7]{3}|[a-z/]){1,12}") {
        let _ = cgroup2_mount_in(&text);
        let line = format!("30 25 0:26 / /sys/fs/{esc} rw,nosuid - cgroup2 cgroup2 rw\n");
        let both = format!("{}\n{}", text, line);
        let found = cgroup2_mount_in(&both);
        prop_assert!(found.is_some() || text.contains(" - cgroup2"));
    }

    /// `--cgroup` arguments: an existing directory under the mount, or a clean error;
    /// never a path outside the mount.
    #[test]
    fn cgroup_arguments_stay_inside_the_mount(arg in "(/?(\\.\\.|[a-z]{1,3}|\\.)){1,5}") {
        let mount = std::env::temp_dir();
        if let Ok(dir) = cgroup_dir(&mount, &arg) {
            prop_assert!(dir.starts_with(&mount), "{arg} -> {}", dir.display());
            prop_assert!(!arg.split('/').any(|c| c == ".."));
        }
    }
}
