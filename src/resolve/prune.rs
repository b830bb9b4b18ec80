//! Drop packages a solution does not need.
//!
//! A SAT solver decides dependencies one at a time: for `(A or B)` it may
//! pick `A` before anything has pulled in `B`, then install `B` for another
//! dependency, and keep both. libsolv avoids this by preferring alternatives
//! already in the transaction; the equivalent here is to remove, after
//! solving, every package whose removal leaves every dependency of the
//! remaining packages (and every request) met. The result is minimal in the
//! sense that no single package can be taken out.
//!
//! The input is abstract (atoms held by packages, clauses over atoms), so the
//! caller decides what a dependency is; see `solver::prune_input`.

use std::collections::BTreeSet;

/// One CNF clause of a dependency: holds when one of `pos` is held or one of
/// `neg` is not (`neg` comes from rich `if`/`unless`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The package whose dependency this is; `None` for a request, which
    /// always stays.
    pub owner: Option<usize>,
    pub pos: Vec<u32>,
    pub neg: Vec<u32>,
}

/// A solution to prune: packages are `0..len`, atoms index `satisfiers`.
#[derive(Debug, Default)]
pub struct Input {
    /// For each atom, the packages of the solution that satisfy it.
    pub satisfiers: Vec<Vec<usize>>,
    pub clauses: Vec<Clause>,
    /// Packages that stay whatever their dependencies (requested by name,
    /// chosen by `prefer` or the minimal list, added as weak deps).
    pub keep: Vec<bool>,
    /// Every package, in the order removal is tried: when two packages are
    /// each redundant only while the other stays, the earlier one goes.
    pub order: Vec<usize>,
}

/// Which packages stay (`true`), deterministically for a given input.
pub fn prune(input: &Input) -> Vec<bool> {
    let n = input.keep.len();
    let mut present = vec![true; n];
    // How many present packages hold each atom.
    let mut held: Vec<usize> = input.satisfiers.iter().map(Vec::len).collect();
    // The atoms each package satisfies, and the clauses mentioning each atom.
    let mut atoms_of: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (a, ps) in input.satisfiers.iter().enumerate() {
        for &p in ps {
            atoms_of[p].push(a as u32);
        }
    }
    let mut clauses_of: Vec<Vec<usize>> = vec![Vec::new(); input.satisfiers.len()];
    for (c, clause) in input.clauses.iter().enumerate() {
        for &a in clause.pos.iter().chain(&clause.neg) {
            clauses_of[a as usize].push(c);
        }
    }
    // The clauses each package owns: after it goes, what they needed may go.
    let mut owned: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (c, clause) in input.clauses.iter().enumerate() {
        if let Some(p) = clause.owner {
            owned[p].push(c);
        }
    }
    let rank: Vec<usize> = {
        let mut r = vec![usize::MAX; n];
        for (k, &p) in input.order.iter().enumerate() {
            r[p] = k;
        }
        r
    };
    // Candidates by rank: the lowest rank is always tried first, so the
    // outcome does not depend on hash or discovery order.
    let mut queue: BTreeSet<(usize, usize)> = (0..n)
        .filter(|&p| !input.keep[p])
        .map(|p| (rank[p], p))
        .collect();
    let mut mentioned: Vec<usize> = Vec::new();
    while let Some((_, p)) = queue.pop_first() {
        if !present[p] {
            continue;
        }
        mentioned.clear();
        for &a in &atoms_of[p] {
            mentioned.extend(&clauses_of[a as usize]);
        }
        let holds_without_p = |c: &Clause| {
            let held_without = |a: u32| {
                let mine = atoms_of[p].contains(&a);
                held[a as usize] > usize::from(mine)
            };
            c.pos.iter().any(|&a| held_without(a)) || c.neg.iter().any(|&a| !held_without(a))
        };
        let removable = mentioned.iter().all(|&c| {
            let clause = &input.clauses[c];
            match clause.owner {
                Some(o) if o == p || !present[o] => true,
                _ => holds_without_p(clause),
            }
        });
        if !removable {
            continue;
        }
        present[p] = false;
        for &a in &atoms_of[p] {
            held[a as usize] -= 1;
        }
        // What p's own dependencies held may now be unneeded; retry those.
        for &c in &owned[p] {
            let clause = &input.clauses[c];
            for &a in clause.pos.iter().chain(&clause.neg) {
                for &q in &input.satisfiers[a as usize] {
                    if present[q] && !input.keep[q] {
                        queue.insert((rank[q], q));
                    }
                }
            }
        }
    }
    present
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(owner: Option<usize>, pos: &[u32], neg: &[u32]) -> Clause {
        Clause {
            owner,
            pos: pos.to_vec(),
            neg: neg.to_vec(),
        }
    }

    /// Package i alone satisfies atom i.
    fn own_atoms(n: usize) -> Vec<Vec<usize>> {
        (0..n).map(|i| vec![i]).collect()
    }

    #[test]
    fn the_redundant_alternative_and_its_chain_go() {
        // 0 requested; 0 needs (1 or 2) and 3; 3 needs 2; 1 needs 4.
        let input = Input {
            satisfiers: own_atoms(5),
            clauses: vec![
                clause(None, &[0], &[]),
                clause(Some(0), &[1, 2], &[]),
                clause(Some(0), &[3], &[]),
                clause(Some(3), &[2], &[]),
                clause(Some(1), &[4], &[]),
            ],
            keep: vec![true, false, false, false, false],
            order: vec![0, 1, 2, 3, 4],
        };
        assert_eq!(prune(&input), [true, false, true, true, false]);
    }

    #[test]
    fn order_decides_between_two_equally_redundant_packages() {
        // 0 needs (1 or 2); both installed, neither needed otherwise.
        let mut input = Input {
            satisfiers: own_atoms(3),
            clauses: vec![clause(Some(0), &[1, 2], &[])],
            keep: vec![true, false, false],
            order: vec![0, 2, 1],
        };
        assert_eq!(prune(&input), [true, true, false]);
        input.order = vec![0, 1, 2];
        assert_eq!(prune(&input), [true, false, true]);
    }

    #[test]
    fn kept_packages_and_conditions_are_respected() {
        // 0 needs (1 if 2): with 2 kept, 1 stays; 3 needs nothing and is
        // needed by nothing, but is kept.
        let input = Input {
            satisfiers: own_atoms(4),
            clauses: vec![clause(Some(0), &[1], &[2])],
            keep: vec![true, false, true, true],
            order: vec![3, 2, 1, 0],
        };
        assert_eq!(prune(&input), [true, true, true, true]);
        // With 2 removable, it goes first (its removal makes the condition
        // false), and then 1 is not needed either.
        let input = Input {
            keep: vec![true, false, false, false],
            order: vec![2, 1, 0, 3],
            ..input
        };
        assert_eq!(prune(&input), [true, false, false, false]);
    }

    #[test]
    fn a_package_holding_several_atoms_stays_if_any_is_needed_alone() {
        // 1 satisfies atoms 1 and 2; 2 satisfies atom 1 too. 0 needs 1 and 2.
        let input = Input {
            satisfiers: vec![vec![0], vec![1, 2], vec![1]],
            clauses: vec![clause(Some(0), &[1], &[]), clause(Some(0), &[2], &[])],
            keep: vec![true, false, false],
            order: vec![1, 2, 0],
        };
        assert_eq!(prune(&input), [true, true, false]);
    }
}
