//! Splitting a PostgreSQL ingest batch into two lanes stored at once on two connections (one
//! backend uses one core, and ingest was bound by it) without changing what gets stored.
//!
//! Everything a filing's outcome depends on in order must stay in one lane, in the batch's order:
//! amendments are matched among one issuer's filings, so a lane holds whole issuers; a key repeated
//! in the batch (a duplicate, or a conflicting document under another issuer) must meet its first
//! occurrence, so issuers linked by a shared key share a lane. The lanes then share only insiders:
//! an insider named by stored filings in both lanes gets, once both are done, the name the last of
//! those filings in batch order gives, as storing in order would leave it.

use std::collections::{BTreeMap, HashMap};

use market::form4::Filing;

use super::ingest::StoreOutcome;

/// A batch split in two, with each item's position in the batch.
pub(super) struct Lanes<'b> {
    pub items: [Vec<(&'b Filing, &'b str)>; 2],
    pub positions: [Vec<usize>; 2],
}

/// FNV-1a: stable across runs and processes.
fn lane_of(issuer: &str) -> usize {
    let hash = issuer.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::from(hash % 2 == 1)
}

fn root<'a>(parent: &HashMap<&'a str, &'a str>, mut issuer: &'a str) -> &'a str {
    while let Some(&up) = parent.get(issuer) {
        if up == issuer {
            break;
        }
        issuer = up;
    }
    issuer
}

pub(super) fn split<'b>(batch: &[(&'b Filing, &'b str)]) -> Lanes<'b> {
    // Issuers linked by a shared key form one set (union-find, the smallest CIK as its root so the
    // outcome does not depend on the order of the links).
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut first_issuer: HashMap<&str, &str> = HashMap::new();
    for (filing, key) in batch {
        let issuer = filing.issuer.cik.as_str();
        parent.entry(issuer).or_insert(issuer);
        let other = *first_issuer.entry(key).or_insert(issuer);
        let (a, b) = (root(&parent, other), root(&parent, issuer));
        if a != b {
            let (low, high) = if a < b { (a, b) } else { (b, a) };
            parent.insert(high, low);
        }
    }
    let mut lanes = Lanes {
        items: [vec![], vec![]],
        positions: [vec![], vec![]],
    };
    for (position, item) in batch.iter().enumerate() {
        let lane = lane_of(root(&parent, item.0.issuer.cik.as_str()));
        if let (Some(items), Some(positions)) =
            (lanes.items.get_mut(lane), lanes.positions.get_mut(lane))
        {
            items.push(*item);
            positions.push(position);
        }
    }
    lanes
}

/// Insiders named by stored filings of both lanes, with the name the last such filing in batch
/// order gives, by CIK.
pub(super) fn shared_insider_names<E>(
    batch: &[(&Filing, &str)],
    lanes: &Lanes<'_>,
    outcomes: &[Result<StoreOutcome, E>],
) -> BTreeMap<String, String> {
    let mut lane_at = vec![0usize; batch.len()];
    for (lane, positions) in lanes.positions.iter().enumerate() {
        for position in positions {
            if let Some(slot) = lane_at.get_mut(*position) {
                *slot = lane;
            }
        }
    }
    let mut seen_in: HashMap<&str, (u8, &str)> = HashMap::new();
    for ((position, (filing, _)), outcome) in batch.iter().enumerate().zip(outcomes) {
        if !matches!(outcome, Ok(StoreOutcome::Stored { .. })) {
            continue;
        }
        let lane_bit = 1u8 << lane_at.get(position).copied().unwrap_or(0);
        for owner in &filing.owners {
            let entry = seen_in
                .entry(owner.cik.as_str())
                .or_insert((0, owner.name.as_str()));
            entry.0 |= lane_bit;
            entry.1 = owner.name.as_str();
        }
    }
    seen_in
        .into_iter()
        .filter(|(_, (lanes, _))| *lanes == 0b11)
        .map(|(cik, (_, name))| (cik.to_string(), name.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use market::form4::{Issuer, ReportingOwner};

    use super::*;

    fn filing(issuer: &str, owner: (&str, &str)) -> Filing {
        Filing {
            document_type: "4".into(),
            period_of_report: None,
            date_of_original_submission: None,
            accession_number: None,
            filed_at: None,
            not_subject_to_section16: false,
            rule_10b5_1: None,
            issuer: Issuer {
                cik: issuer.into(),
                name: "Issuer".into(),
                ticker: None,
            },
            owners: vec![ReportingOwner {
                cik: owner.0.into(),
                name: owner.1.into(),
                is_director: true,
                is_officer: false,
                officer_title: None,
                is_ten_percent_owner: false,
                is_other: false,
                other_text: None,
            }],
            transactions: vec![],
            holdings: vec![],
            footnotes: vec![],
            remarks: None,
        }
    }

    fn lane_holding(lanes: &Lanes<'_>, position: usize) -> usize {
        usize::from(lanes.positions[1].contains(&position))
    }

    #[test]
    fn issuers_stay_whole_and_a_shared_key_joins_its_issuers() {
        let issuers: Vec<String> = (0..40).map(|i| format!("00007700{i:02}")).collect();
        let filings: Vec<Filing> = issuers
            .iter()
            .map(|issuer| filing(issuer, ("0000660001", "Doe Jane")))
            .collect();
        let keys: Vec<String> = (0..40).map(|i| format!("acc:{i}")).collect();
        let mut batch: Vec<(&Filing, &str)> = filings
            .iter()
            .zip(&keys)
            .map(|(f, k)| (f, k.as_str()))
            .collect();
        // Each issuer twice, and a document of issuer 39 under issuer 0's key.
        let again: Vec<(&Filing, &str)> = batch.clone();
        batch.extend(again);
        batch.push((&filings[39], keys[0].as_str()));
        let lanes = split(&batch);
        assert!(!lanes.positions[0].is_empty() && !lanes.positions[1].is_empty());
        for i in 0..40 {
            assert_eq!(
                lane_holding(&lanes, i),
                lane_holding(&lanes, i + 40),
                "issuer {i}"
            );
        }
        assert_eq!(
            lane_holding(&lanes, 0),
            lane_holding(&lanes, 39),
            "linked by a key"
        );
        assert_eq!(lane_holding(&lanes, 80), lane_holding(&lanes, 0));
        // Batch order is kept inside each lane.
        for positions in &lanes.positions {
            assert!(positions.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn an_insider_of_both_lanes_gets_the_last_stored_name_in_batch_order() {
        let issuers: Vec<String> = (0..20).map(|i| format!("00007700{i:02}")).collect();
        let names: Vec<String> = (0..20).map(|i| format!("Doe Jane {i}")).collect();
        let filings: Vec<Filing> = issuers
            .iter()
            .zip(&names)
            .map(|(issuer, name)| filing(issuer, ("0000660001", name)))
            .collect();
        let keys: Vec<String> = (0..20).map(|i| format!("acc:{i}")).collect();
        let batch: Vec<(&Filing, &str)> = filings
            .iter()
            .zip(&keys)
            .map(|(f, k)| (f, k.as_str()))
            .collect();
        let lanes = split(&batch);
        let stored = |i: usize| StoreOutcome::Stored {
            filing_id: format!("f{i}"),
            trades: 0,
            superseded: 0,
            superseded_by: None,
            alerts: 0,
        };
        let mut outcomes: Vec<Result<StoreOutcome, ()>> = (0..20).map(|i| Ok(stored(i))).collect();
        assert_eq!(
            shared_insider_names(&batch, &lanes, &outcomes),
            BTreeMap::from([("0000660001".to_string(), "Doe Jane 19".to_string())])
        );
        // The last one was a duplicate: the one before it names the insider last.
        outcomes[19] = Ok(StoreOutcome::Duplicate {
            filing_id: "f0".into(),
        });
        assert_eq!(
            shared_insider_names(&batch, &lanes, &outcomes).get("0000660001"),
            Some(&"Doe Jane 18".to_string())
        );
        // Named in one lane only: nothing to settle.
        let one_lane: Vec<Result<StoreOutcome, ()>> = (0..20)
            .map(|i| {
                if lanes.positions[0].contains(&i) {
                    Ok(stored(i))
                } else {
                    Err(())
                }
            })
            .collect();
        assert!(shared_insider_names(&batch, &lanes, &one_lane).is_empty());
    }
}
