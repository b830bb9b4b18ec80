//! What package scriptlets would have left behind, emulated natively.
//!
//! Scriptlets are never run: running code from the image would need the
//! image's shell, its libraries and root, and would make the tree depend on
//! whatever the host lets a process do. Instead each kind of effect real
//! distributions' scriptlets have (accounts, alternatives, symlinks,
//! `/etc/shells`, shadow files, crypto-policy links) has its own module
//! that *parses* the scriptlet bodies it recognises and edits the [`Tree`].
//! [`apply`] runs them once, in the fixed order of [`PASSES`], so a later
//! pass sees what an earlier one made (the shadow files see the accounts).
//!
//! Every pass reports what it did and, per package, which scriptlet bodies
//! it recognised but could not emulate, so the build report and `plan` can
//! say what is missing instead of leaving it silent.
//!
//! - [`classify`]: the kinds of effect a body has, by command name (report only).
//! - [`accounts`]: users and groups from `useradd`/`groupadd`/`usermod`,
//!   SUSE's sysusers heredocs and lua, and every sysusers.d file.
//! - [`alternatives`]: `alternatives --install` / `update-alternatives --install`.
//! - [`links`]: `ln -s`, `mkdir`, lua `posix.symlink` / `posix.mkdir`.
//! - [`shells`]: `/etc/shells` lines shells' `%post` add.
//! - [`shadow`]: `/etc/shadow` and `/etc/gshadow` as `pwconv`/`grpconv` make them.
//! - [`crypto_policy`]: crypto-policies' DEFAULT back-end links.
//! - [`lex`]: the one tokenizer of shell bodies, under both readings:
//!   [`shell`], the `/bin/sh` subset the link and alternatives passes read
//!   scriptlets with (conditions decided against the tree), and [`words`]
//!   (with [`account_commands`]), the flatter reading the account, shells
//!   and shadow passes use (redirections and here-documents kept).

use super::staging::Staging;
use super::unpack::SkippedScriptlet;
use super::Tree;

pub mod account_commands;
pub mod accounts;
pub mod alternatives;
pub mod classify;
pub mod crypto_policy;
pub mod lex;
pub mod links;
pub mod place;
pub mod shadow;
pub mod shell;
pub mod shells;
pub mod words;

pub use classify::{describe, effects, notes};

/// One installed package's scriptlets, in install order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    /// The package's name (`bash`).
    pub package: String,
    pub scriptlets: Vec<SkippedScriptlet>,
}

/// Everything the passes read besides the tree.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    /// Every installed package's scriptlets, in install order.
    pub scripts: &'a [Scripts],
}

/// One thing a pass did, for the build report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The pass (`"alternatives"`).
    pub pass: &'static str,
    /// The package whose scriptlet asked for it, if one did.
    pub package: Option<String>,
    /// What was done, for a person (`/usr/bin/ld → /usr/bin/ld.bfd`).
    pub what: String,
}

/// One scriptlet effect recognised but not emulated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDone {
    pub pass: &'static str,
    pub package: String,
    /// Why, naming the command (`alternatives --set: not emulated`).
    pub why: String,
}

/// What all passes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub done: Vec<Done>,
    pub not_done: Vec<NotDone>,
}

/// Why a pass could not finish (its input was unreadable, or a path could
/// not be placed); a body it does not understand is a [`NotDone`], not an error.
#[derive(Debug, thiserror::Error)]
#[error("scriptlet effect `{pass}`: {message}")]
pub struct EffectError {
    pub pass: &'static str,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// One pass: reads scriptlets (and the tree), edits the tree, reports.
pub type Pass = fn(&mut Tree, &mut Staging, &Input<'_>, &mut Report) -> Result<(), EffectError>;

/// The passes, in the order they run.
pub const PASSES: &[(&str, Pass)] = &[
    (accounts::NAME, accounts::pass),
    (alternatives::NAME, alternatives::pass),
    (links::NAME, links::pass),
    (shells::NAME, shells::pass),
    (shadow::NAME, shadow::pass),
    (crypto_policy::NAME, crypto_policy::pass),
];

/// Run every pass of [`PASSES`] in order.
pub fn apply(
    tree: &mut Tree,
    stage: &mut Staging,
    input: &Input<'_>,
) -> Result<Report, EffectError> {
    let mut report = Report::default();
    for (_, pass) in PASSES {
        pass(tree, stage, input, &mut report)?;
    }
    Ok(report)
}
