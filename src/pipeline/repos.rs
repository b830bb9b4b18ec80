//! How a build reaches its repos: URLs after overrides and substitution,
//! the one HTTP client (fenced by the policy, with each repo's credential)
//! and the keyrings that check signatures.

use anyhow::{bail, Context as _};

use super::Settings;
use crate::http::Client;
use crate::package::Arch;
use crate::recipe::Recipe;
use crate::repo;
use crate::report::{Event, Reporter};
use crate::signature::Keyring;

/// The baseurl for `repo` on `arch`, after overrides and substitution.
fn baseurl(
    recipe: &Recipe,
    settings: &Settings,
    name: &str,
    template: &str,
    arch: Arch,
) -> anyhow::Result<String> {
    let template = settings
        .baseurl_overrides
        .get(name)
        .map_or(template, String::as_str);
    // `user:pass@` in an override is a credential (see `client`), never part of the URL.
    let (template, _) = crate::credentials::split_userinfo(template);
    let url = repo::substitute(
        &template,
        recipe.options.releasever.as_deref().unwrap_or(""),
        arch.rpm_name(),
    )
    .with_context(|| format!("repo `{name}` in {}", recipe.path.display()))?;
    Ok(repo::normalize_baseurl(&url))
}

/// Where `repo`'s metadata may come from on `arch`, substituted: its base
/// URLs, metalink and mirrorlist, or only the `--baseurl` override.
pub(super) fn sources(
    recipe: &Recipe,
    settings: &Settings,
    repo: &crate::recipe::Repo,
    arch: Arch,
) -> anyhow::Result<repo::mirrors::Sources> {
    let url = |template: &str| baseurl(recipe, settings, &repo.name, template, arch);
    if settings.baseurl_overrides.contains_key(&repo.name) {
        return Ok(repo::mirrors::Sources {
            baseurls: vec![url("")?],
            ..Default::default()
        });
    }
    // A metalink or mirrorlist URL is a document, not a directory: no `/` added.
    let document = |template: &String| {
        repo::substitute(
            template,
            recipe.options.releasever.as_deref().unwrap_or(""),
            arch.rpm_name(),
        )
        .with_context(|| format!("repo `{}` in {}", repo.name, recipe.path.display()))
    };
    Ok(repo::mirrors::Sources {
        baseurls: std::iter::once(&repo.baseurl)
            .filter(|b| !b.is_empty())
            .chain(&repo.more_baseurls)
            .map(|b| url(b))
            .collect::<anyhow::Result<_>>()?,
        metalink: repo.metalink.as_ref().map(document).transpose()?,
        mirrorlist: repo.mirrorlist.as_ref().map(document).transpose()?,
    })
}

/// Every URL of `sources`, for the policy and the credential table.
pub(super) fn source_urls(sources: &repo::mirrors::Sources) -> impl Iterator<Item = &String> {
    sources
        .baseurls
        .iter()
        .chain(&sources.metalink)
        .chain(&sources.mirrorlist)
}

pub(super) fn check_overrides(recipe: &Recipe, settings: &Settings) -> anyhow::Result<()> {
    for name in settings.baseurl_overrides.keys() {
        if !recipe.repos.iter().any(|r| &r.name == name) {
            let known: Vec<&str> = recipe.repos.iter().map(|r| r.name.as_str()).collect();
            bail!(
                "--baseurl names repo `{name}`, but the recipe has only: {}",
                known.join(", ")
            );
        }
    }
    // The policy looks at the URLs actually used: after overrides, per arch.
    if let Some(policy) = &settings.policy {
        for r in &recipe.repos {
            for &arch in &recipe.image.arch {
                // Mirrors a metalink names are held to the fence by the client.
                for url in source_urls(&sources(recipe, settings, r, arch)?) {
                    policy.check(r, url)?;
                }
            }
        }
    }
    Ok(())
}

/// Say which repos are used without signature checks: a choice the user made
/// explicitly (`gpgcheck = false`) or by giving no key; either way it shows.
pub(super) fn report_unchecked(recipe: &Recipe, reporter: &dyn Reporter) {
    for r in &recipe.repos {
        if !r.gpgcheck {
            reporter.event(Event::SignaturesUnchecked {
                repo: r.name.clone(),
            });
        }
    }
    crate::local::report_unchecked(recipe, reporter);
}

/// The one HTTP client of a run: `settings.net`, fenced by the policy's
/// allow-list on every URL it fetches, with each repo's credential bound to
/// the origin of its baseurl (for every target arch).
pub fn client(recipe: &Recipe, settings: &Settings) -> anyhow::Result<Client> {
    let mut options = settings.net.clone();
    if let Some(policy) = &settings.policy {
        options.fence = policy.fence();
    }
    let mut table = crate::credentials::AuthTable::default();
    for r in &recipe.repos {
        let from_override = settings
            .baseurl_overrides
            .get(&r.name)
            .and_then(|u| crate::credentials::split_userinfo(u).1);
        let credential = match repo_credential(recipe, r)? {
            Some(c) => Some(c),
            None => from_override.or_else(|| r.auth.from_url.clone()),
        };
        for &arch in &recipe.image.arch {
            for url in source_urls(&sources(recipe, settings, r, arch)?) {
                let credential = credential.clone().or_else(|| {
                    crate::credentials::host(url)
                        .and_then(|h| crate::credentials::netrc_for(&h))
                        .map(|(c, _)| c)
                });
                if let Some(c) = credential {
                    table.insert(url, c);
                }
            }
        }
    }
    Ok(Client::with_options(crate::http::RetryPolicy::default(), &options)?.with_auth(table))
}

/// The credential the recipe gives `repo` (`username` + `password_env`/`password_file`).
fn repo_credential(
    recipe: &Recipe,
    repo: &crate::recipe::Repo,
) -> anyhow::Result<Option<crate::credentials::Credential>> {
    use crate::recipe::Secret;
    let read = |secret: &Secret, what: &str| -> anyhow::Result<String> {
        match secret {
            Secret::Inline(v) => Ok(v.clone()),
            Secret::Env(var) => std::env::var(var).with_context(|| {
                format!(
                    "repo `{}` in {}: its {what} comes from the environment variable {var}, which is not set\n  hint: export {var} (e.g. from your CI's secret store) before building",
                    repo.name,
                    recipe.path.display()
                )
            }),
            Secret::File(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "repo `{}` in {}: cannot read its {what} file {}\n  hint: check password_file; the file holds the secret on its first line",
                        repo.name,
                        recipe.path.display(),
                        path.display()
                    )
                })?;
                Ok(text.lines().next().unwrap_or_default().to_string())
            }
        }
    };
    match (&repo.auth.username, &repo.auth.password) {
        (Some(user), Some(password)) => Ok(Some(crate::credentials::Credential::new(
            read(user, "username")?,
            read(password, "password")?,
        ))),
        _ => Ok(None),
    }
}

/// Every repo's keyring (index = recipe order), fetched from the recipe's
/// `gpgkey` URLs; empty for repos that check nothing.
pub fn keyrings(recipe: &Recipe, client: &Client) -> anyhow::Result<Vec<Keyring>> {
    recipe
        .repos
        .iter()
        .map(|r| {
            let mut ring = Keyring {
                allow_legacy: recipe.options.legacy_signatures,
                ..Keyring::default()
            };
            if !(r.gpgcheck || r.repo_gpgcheck) {
                return Ok(ring);
            }
            if r.gpgkeys.is_empty() {
                bail!(
                    "repo `{}` checks signatures but names no gpgkey\n  hint: add gpgkey = \"URL or path\" to the repo in {}, or set `gpgcheck = false`, knowingly",
                    r.name,
                    recipe.path.display()
                );
            }
            for key in &r.gpgkeys {
                // The recipe names its keys; `signing_keys` governs them,
                // not the repo allow-list.
                let bytes = client
                    .unfenced()
                    .read_to_vec(&key.url)
                    .with_context(|| format!("repo `{}`: cannot read its gpgkey {}", r.name, key.url))?;
                // Plain http: only a pinned fingerprint makes the key trustworthy
                // (the recipe refuses an unpinned one).
                ring.add(&bytes, &key.url, key.fingerprint.as_deref())
                    .with_context(|| format!("repo `{}`", r.name))?;
            }
            Ok(ring)
        })
        // Index `recipe.repos.len()`: the local RPMs' (see crate::local).
        .chain(std::iter::once(crate::local::keyring(recipe, client)))
        .collect()
}
