//! The audit log as evidence: records are sealed into a SHA-256 hash chain shortly after they
//! are written, and `billpay audit verify` recomputes the chain to find any record altered,
//! deleted or inserted out of order since.
//!
//! Records are written by the services inside the transaction of the action they record (a
//! saved card, a refund...), unsealed. Sealing is separate, in the job runner's loop, so the
//! busy write paths never queue on one chain head: a sealer locks the head, numbers the unsealed
//! records oldest first, and stores each one's hash = SHA-256(previous hash, its fields). The
//! head (last number and hash) is kept apart, so deleting the newest records is detected too.
//! What a chain kept in the same database cannot stop is someone who rewrites every record after
//! the one they changed and the head; `billpay audit verify` prints the head's hash so an
//! operator can record it elsewhere (a ticket, a log shipped off the machine) and compare.

use sha2::{Digest, Sha256};

use billpay_store::audit::{self as q, ChainedAuditRow};

use crate::{Billpay, ServiceError};

/// Records sealed per transaction.
pub const SEAL_BATCH: i64 = 500;
/// The previous hash of the first record.
pub const GENESIS: &str = "genesis";
/// Records read per page when verifying.
const VERIFY_PAGE: i64 = 2_000;

/// SHA-256 over the previous hash, the record's number and every field, each length-prefixed
/// (so no two different records hash alike by moving text between fields). Hex.
pub fn record_hash(prev_hash: &str, seq: i64, r: &ChainedAuditRow) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &[u8]| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s);
    };
    field(prev_hash.as_bytes());
    field(&seq.to_be_bytes());
    field(r.id.as_bytes());
    field(&r.at.to_be_bytes());
    field(r.actor.as_bytes());
    field(r.action.as_bytes());
    field(r.subject_type.as_bytes());
    field(r.subject_id.as_bytes());
    for optional in [&r.account_id, &r.channel] {
        match optional {
            Some(v) => {
                field(b"some");
                field(v.as_bytes());
            }
            None => field(b"none"),
        }
    }
    field(r.detail.as_bytes());
    hex::encode(h.finalize())
}

/// What `billpay audit verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Sealed records checked.
    pub sealed: i64,
    pub head_seq: i64,
    pub head_hash: String,
    /// Records written but not sealed yet, and the oldest one's time (microseconds).
    pub unsealed: i64,
    pub oldest_unsealed_at: Option<i64>,
    /// Everything wrong, first found first. Empty: the chain holds.
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Billpay {
    /// Seals every record written so far into the chain. Returns how many it sealed.
    pub async fn seal_audit(&self) -> Result<u64, ServiceError> {
        let mut total = 0;
        loop {
            {
                let mut c = self.store.read_conn().await?;
                if !q::any_unsealed(&mut c).await? {
                    return Ok(total);
                }
            }
            let n = self
                .store
                .write(move |c| {
                    Box::pin(async move {
                        let (mut seq, mut prev) = q::lock_head(c).await?;
                        let rows = q::unsealed(c, SEAL_BATCH).await?;
                        let n = rows.len() as u64;
                        for r in rows {
                            seq += 1;
                            let hash = record_hash(&prev, seq, &r);
                            if !q::seal(c, &r.id, seq, &prev, &hash).await? {
                                return Err(billpay_store::StoreError::Internal(
                                    "an audit record was sealed by another sealer holding no lock"
                                        .into(),
                                ));
                            }
                            prev = hash;
                        }
                        q::set_head(c, seq, &prev).await?;
                        Ok::<_, billpay_store::StoreError>(n)
                    })
                })
                .await?;
            total += n;
            if n < SEAL_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Recomputes the whole chain. Reads only.
    pub async fn verify_audit(&self) -> Result<AuditReport, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let (head_seq, head_hash) = q::head(&mut c).await?;
        let (unsealed, oldest_unsealed_at) = q::unsealed_summary(&mut c).await?;
        let mut report = AuditReport {
            head_seq,
            head_hash: head_hash.clone(),
            unsealed,
            oldest_unsealed_at,
            ..Default::default()
        };
        let (mut last_seq, mut last_hash) = (0i64, GENESIS.to_string());
        loop {
            let page = q::chain_after(&mut c, last_seq, VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            for r in &page {
                let seq = r.seq.unwrap_or_default();
                if seq != last_seq + 1 {
                    report.problems.push(if seq == last_seq + 2 {
                        format!("record {} is missing (deleted): the chain goes from {last_seq} to {seq}", last_seq + 1)
                    } else {
                        format!("records {} to {} are missing (deleted): the chain goes from {last_seq} to {seq}", last_seq + 1, seq - 1)
                    });
                }
                if r.prev_hash.as_deref() != Some(last_hash.as_str()) && seq == last_seq + 1 {
                    report.problems.push(format!(
                        "record {seq} ({}) does not link to record {last_seq}: the chain was rewritten",
                        r.id
                    ));
                }
                let prev = r.prev_hash.as_deref().unwrap_or_default();
                if r.hash.as_deref() != Some(record_hash(prev, seq, r).as_str()) {
                    report.problems.push(format!(
                        "record {seq} ({}, {} by {}) was altered after it was sealed",
                        r.id, r.action, r.actor
                    ));
                }
                report.sealed += 1;
                last_seq = seq;
                last_hash = r.hash.clone().unwrap_or_default();
            }
            if (page.len() as i64) < VERIFY_PAGE {
                break;
            }
        }
        if head_seq > last_seq {
            report.problems.push(if last_seq == 0 {
                format!("every record is missing: the chain's head says {head_seq} were sealed")
            } else {
                format!(
                    "the newest records are missing (deleted): the chain ends at {last_seq}, its head says {head_seq}"
                )
            });
        } else if head_seq < last_seq {
            report.problems.push(format!(
                "records after {head_seq} were added outside the sealer: the chain ends at {last_seq}, its head says {head_seq}"
            ));
        } else if head_hash != last_hash {
            report
                .problems
                .push("the chain's head does not match its newest record".to_string());
        }
        Ok(report)
    }

    /// An audit record of an operator's command-line action (actor `operator:<operator>`,
    /// channel `cli`).
    pub async fn audit_command(
        &self,
        operator: &str,
        action: &str,
        subject_type: &str,
        subject_id: &str,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let row = billpay_store::rows::AuditRow {
            id: self.new_id("aud"),
            at: self.clock.now_micros(),
            actor: format!("operator:{operator}"),
            action: action.into(),
            subject_type: subject_type.into(),
            subject_id: subject_id.into(),
            account_id: None,
            channel: Some("cli".into()),
            detail: detail.into(),
        };
        self.store
            .write(move |c| {
                Box::pin(async move { billpay_store::queries::insert_audit(c, &row).await })
            })
            .await?;
        Ok(())
    }

    /// Whether the audit log has any record of `action` on `subject_id`.
    pub async fn audited(&self, action: &str, subject_id: &str) -> Result<bool, ServiceError> {
        let found = self
            .audit_records(
                None,
                Some(action),
                None,
                Some(subject_id),
                jiff::Timestamp::MIN,
                jiff::Timestamp::MAX,
                1,
            )
            .await?;
        Ok(!found.is_empty())
    }

    /// Audit records matching every given filter, newest first.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_records(
        &self,
        actor: Option<&str>,
        action: Option<&str>,
        account: Option<&billpay_domain::AccountNumber>,
        subject_id: Option<&str>,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
        limit: i64,
    ) -> Result<Vec<ChainedAuditRow>, ServiceError> {
        let account_id = match account {
            Some(n) => Some(self.account_row(n).await?.id),
            None => None,
        };
        let mut c = self.store.read_conn().await?;
        Ok(q::search(
            &mut c,
            actor,
            action,
            account_id.as_deref(),
            subject_id,
            from.as_microsecond(),
            to.as_microsecond(),
            limit.clamp(1, 1_000),
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ChainedAuditRow {
        ChainedAuditRow {
            id: "aud_1".into(),
            at: 1,
            actor: "api".into(),
            action: "vault.save".into(),
            subject_type: "payment_method".into(),
            subject_id: "pm_1".into(),
            account_id: Some("acc_1".into()),
            channel: None,
            detail: "{}".into(),
            seq: None,
            prev_hash: None,
            hash: None,
        }
    }

    #[test]
    fn every_field_and_the_link_are_in_the_hash() {
        let base = record_hash(GENESIS, 1, &row());
        assert_eq!(base.len(), 64);
        assert_eq!(base, record_hash(GENESIS, 1, &row()));
        assert_ne!(base, record_hash("other", 1, &row()));
        assert_ne!(base, record_hash(GENESIS, 2, &row()));
        type Change = Box<dyn Fn(&mut ChainedAuditRow)>;
        let changes: Vec<Change> = vec![
            Box::new(|r| r.at = 2),
            Box::new(|r| r.actor = "apj".into()),
            Box::new(|r| r.detail = "{ }".into()),
            Box::new(|r| r.account_id = None),
            Box::new(|r| r.channel = Some(String::new())),
            // Text moved between fields does not hash alike.
            Box::new(|r| {
                r.subject_type = "payment_methodp".into();
                r.subject_id = "m_1".into();
            }),
        ];
        for change in changes {
            let mut r = row();
            change(&mut r);
            assert_ne!(base, record_hash(GENESIS, 1, &r));
        }
    }
}
