//! Scriptlet bodies from packages (untrusted): every reader of the effect
//! passes and `plan`'s classifier, as shell and as lua, as %post and as a
//! trigger. None may panic or hang on any body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minibuild::rootfs::effects::{account_commands, classify, lex, shadow, shell, shells, words};
use minibuild::rootfs::unpack::{ScriptletKind, SkippedScriptlet};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    for lua in [false, true] {
        let _ = account_commands::parse(body, lua);
        let _ = shells::added(body, lua);
        for kind in [ScriptletKind::PreTrans, ScriptletKind::PostIn, ScriptletKind::Trigger] {
            let s = SkippedScriptlet {
                kind,
                interpreter: vec![if lua { "<lua>" } else { "/bin/sh" }.to_string()],
                body: body.to_string(),
                triggered_by: Vec::new(),
            };
            let _ = classify::notes(&s, false);
        }
    }
    let _ = lex::tokens(body);
    let _ = words::commands(body);
    let _ = shadow::chmods(body);
    shell::run(body, &["1"], &mut Undecided);
});

/// A host that decides nothing: every branch of the reader is walked.
struct Undecided;

impl shell::Host for Undecided {
    fn file_test(&self, _: &str, _: &str) -> Option<bool> {
        None
    }
    fn run(&mut self, _: &shell::Command, _: bool) -> shell::Status {
        shell::Status::Unknown
    }
}
