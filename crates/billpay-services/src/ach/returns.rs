//! Returns and notices of change from the bank, each applied once with all its effects.

use super::*;

impl Billpay {
    /// Applies a returns / notification-of-change file from the bank. Each return and each
    /// correction is applied once, in one transaction with its effects; the same file again
    /// changes nothing.
    pub async fn import_ach_returns(&self, text: &str) -> Result<ReturnsReport, ServiceError> {
        let file = nacha::parse_file(text)
            .map_err(|e| ServiceError::invalid("file", format!("not a valid NACHA file: {e}")))?;
        let sha = sha256_hex(text.as_bytes());
        let mut report = ReturnsReport::default();
        for r in file.returns() {
            self.apply_return_item(&sha, &r.original_trace, &r.code, &mut report)
                .await?;
        }
        for n in file.corrections() {
            self.apply_correction(&sha, &n.original_trace, &n.code, &n.parsed, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn apply_return_item(
        &self,
        sha: &str,
        trace: &str,
        code: &str,
        report: &mut ReturnsReport,
    ) -> Result<(), ServiceError> {
        let entry = {
            let mut c = self.store.read_conn().await?;
            q::entry_by_trace(&mut c, trace).await?
        };
        let now = self.clock.now_micros();
        let claim = AchReturnItemRow {
            item_key: format!("return:{trace}"),
            kind: "return".into(),
            code: code.into(),
            original_trace: trace.into(),
            entry_id: entry.as_ref().map(|e| e.id.clone()),
            file_sha256: sha.into(),
            outcome: if entry.is_some() {
                "applied"
            } else {
                "unmatched"
            }
            .into(),
            applied_at: now,
        };
        let Some(entry) = entry else {
            let first = self
                .store
                .write(move |c| Box::pin(async move { q::claim_return_item(c, &claim).await }))
                .await?;
            if first {
                report.unmatched.push(format!(
                    "return {code} for trace {trace}: no entry with this trace"
                ));
            } else {
                report.already_applied += 1;
            }
            return Ok(());
        };
        // The payments this return reverses: the debit's own, or the debits held for a prenote
        // (which are returned unsent with it).
        let (held, payments): (Vec<String>, Vec<PaymentView>) = {
            let mut c = self.store.read_conn().await?;
            let waiting = if entry.purpose == "prenote" {
                q::entries_waiting_for(&mut c, &entry.id).await?
            } else {
                Vec::new()
            };
            let ids: Vec<String> = match entry.purpose.as_str() {
                "debit" => entry.payment_id.iter().cloned().collect(),
                _ => waiting
                    .iter()
                    .filter_map(|e| e.payment_id.clone())
                    .collect(),
            };
            let mut v = Vec::new();
            for id in ids {
                if let Some(p) = queries::payment_by_id(&mut c, &id).await? {
                    v.push(p);
                }
            }
            (waiting.into_iter().map(|e| e.id).collect(), v)
        };
        let mut plans = Vec::new();
        for p in &payments {
            let p = Payment::from_view(p)?;
            plans.push(self.plan_return(&p, code)?);
        }
        let code_s = code.to_string();
        let stops = stops_account(code);
        let entry_c = entry.clone();
        let applied = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !q::claim_return_item(c, &claim).await? {
                        return Ok(None);
                    }
                    q::mark_entry_returned(c, &entry_c.id, &code_s, now).await?;
                    for id in &held {
                        q::mark_entry_returned(c, id, &code_s, now).await?;
                    }
                    if entry_c.purpose == "prenote" || stops {
                        let v = q::validation(c, &entry_c.account_fingerprint).await?;
                        q::upsert_validation(
                            c,
                            &AchValidationRow {
                                account_fingerprint: entry_c.account_fingerprint.clone(),
                                status: "failed".into(),
                                prenote_id: v.as_ref().and_then(|v| v.prenote_id.clone()),
                                return_code: Some(code_s.clone()),
                                created_at: v.map(|v| v.created_at).unwrap_or(now),
                                updated_at: now,
                            },
                        )
                        .await?;
                    }
                    let mut returned = Vec::new();
                    for plan in plans {
                        let id = plan.payment_id.clone();
                        if apply_return_in(c, plan, now).await? {
                            returned.push(id);
                        }
                    }
                    Ok::<_, ServiceError>(Some(returned))
                })
            })
            .await?;
        match applied {
            None => report.already_applied += 1,
            Some(returned) => {
                report.returns_applied += 1;
                if entry.purpose == "credit" {
                    report.unmatched.push(format!(
                        "return {code} of a refund credit (trace {trace}): the refund did not \
                         reach the customer; contact them for another account"
                    ));
                }
                for id in returned {
                    report.payments_returned.push((id, code.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Everything a returned payment changes, prepared outside the write transaction.
    pub(crate) fn plan_return(&self, p: &Payment, code: &str) -> Result<ReturnPlan, ServiceError> {
        let decline = return_decline(code);
        let internal = |e: billpay_domain::LedgerError| {
            ServiceError::Store(StoreError::Internal(e.to_string()))
        };
        let entry = JournalEntry::ach_return(&p.account_number, p.amount).map_err(internal)?;
        let fee_minor = self.ach().returned_payment_fee_minor;
        let fee = (fee_minor > 0)
            .then(|| -> Result<_, ServiceError> {
                let amount = Money::new(fee_minor, p.amount.currency());
                let fee_entry = JournalEntry::fee(&p.account_number, amount).map_err(internal)?;
                let charge_id = self.new_id("chg");
                Ok((
                    q::ChargeRow {
                        id: charge_id.clone(),
                        account_id: p.account_id.clone(),
                        kind: "returned_payment_fee".into(),
                        source_id: p.id.clone(),
                        amount: fee_minor,
                        currency: p.amount.currency().code().into(),
                        description: format!(
                            "Returned payment fee ({} payment {}, {code})",
                            p.amount,
                            p.confirmation_number.grouped()
                        ),
                        journal_id: String::new(),
                        created_at: 0,
                    },
                    JournalRow {
                        id: self.new_id("je"),
                        kind: EntryKind::Fee.as_str().into(),
                        source_type: "charge".into(),
                        source_id: charge_id,
                        account_id: p.account_id.clone(),
                        currency: p.amount.currency().code().into(),
                        created_at: 0,
                    },
                    postings(&fee_entry),
                    amount,
                ))
            })
            .transpose()?;
        let mut notice = serde_json::json!({
            "payment_id": p.id,
            "confirmation_number": p.confirmation_number.grouped(),
            "amount": p.amount.format(),
            "return_code": code,
            "message": decline.message(Language::En),
            "next_step": decline.next_step(Language::En),
        });
        if let Some((_, _, _, amount)) = &fee {
            notice["returned_payment_fee"] = serde_json::json!(amount.format());
        }
        if stops_account(code) && p.saved_method.is_some() {
            notice["saved_method_disabled"] = serde_json::json!(true);
            notice["autopay_stopped_if_enrolled"] = serde_json::json!(true);
        }
        Ok(ReturnPlan {
            payment_id: p.id.clone(),
            account_id: p.account_id.clone(),
            from: p.status,
            kind: p.method.kind,
            code: code.to_string(),
            journal: JournalRow {
                id: self.new_id("je"),
                kind: EntryKind::Return.as_str().into(),
                source_type: "payment".into(),
                source_id: p.id.clone(),
                account_id: p.account_id.clone(),
                currency: p.amount.currency().code().into(),
                created_at: 0,
            },
            postings: postings(&entry),
            fee: fee.map(|(charge, journal, postings, _)| FeePlan {
                charge,
                journal,
                postings,
            }),
            disable_method: p.saved_method.clone().filter(|_| stops_account(code)),
            outbox_id: self.new_id("msg"),
            notice: notice.to_string(),
        })
    }

    async fn apply_correction(
        &self,
        sha: &str,
        trace: &str,
        code: &str,
        correction: &Correction,
        report: &mut ReturnsReport,
    ) -> Result<(), ServiceError> {
        let entry = {
            let mut c = self.store.read_conn().await?;
            q::entry_by_trace(&mut c, trace).await?
        };
        let now = self.clock.now_micros();
        let method = match &entry {
            Some(e) => match &e.payment_method_id {
                Some(pm) => {
                    let mut c = self.store.read_conn().await?;
                    queries::payment_method_by_id(&mut c, pm)
                        .await?
                        .filter(|m| m.status == "active" && m.kind == "ach")
                }
                None => None,
            },
            None => None,
        };
        // The corrected details, checked, and the new number sealed outside the transaction.
        let mut update = None;
        if let Some(m) = &method {
            let vault = self.vault()?;
            let keyring = vault.keyring();
            let current = Sealed {
                kek_version: u32::try_from(m.kek_version).unwrap_or(0),
                wrapped_key: m.wrapped_key.clone(),
                ciphertext: m.ciphertext.clone(),
            };
            let old_plain = vault
                .open(&m.id, &current)
                .map_err(crate::vault::vault_error)?;
            let old_account = String::from_utf8(old_plain.to_vec()).unwrap_or_default();
            let mut routing = m.routing_number.clone().unwrap_or_default();
            let mut account = old_account.clone();
            let mut account_type = m
                .bank_account_type
                .clone()
                .unwrap_or_else(|| "checking".into());
            let type_of = |code: u8| {
                if code / 10 == 3 {
                    "savings"
                } else {
                    "checking"
                }
            };
            match correction {
                Correction::AccountNumber(a) => account = a.trim().to_string(),
                Correction::RoutingNumber(r) => routing = r.trim().to_string(),
                Correction::RoutingAndAccount {
                    routing: r,
                    account: a,
                } => {
                    routing = r.trim().to_string();
                    account = a.trim().to_string();
                }
                Correction::TransactionCode(t) => account_type = type_of(*t).into(),
                Correction::AccountAndTransactionCode {
                    account: a,
                    code: t,
                } => {
                    account = a.trim().to_string();
                    account_type = type_of(*t).into();
                }
                Correction::RoutingAccountAndTransactionCode {
                    routing: r,
                    account: a,
                    code: t,
                } => {
                    routing = r.trim().to_string();
                    account = a.trim().to_string();
                    account_type = type_of(*t).into();
                }
                _ => {}
            }
            let routing_ok = RoutingNumber::parse(&routing).map_err(|e| {
                ServiceError::invalid("file", format!("NOC {code} for trace {trace}: {e}"))
            })?;
            let account_ok = BankAccountNumber::parse(&account).map_err(|_| {
                ServiceError::invalid(
                    "file",
                    format!(
                        "NOC {code} for trace {trace}: the corrected account number is not valid"
                    ),
                )
            })?;
            let sealed = if account != old_account {
                let rng = |buf: &mut [u8]| self.random.fill(buf);
                Some(
                    keyring
                        .seal(&m.id, account.as_bytes(), &rng)
                        .map_err(crate::vault::vault_error)?,
                )
            } else {
                None
            };
            let fp = keyring.fingerprint(
                "ach",
                &format!("{}:{}", routing_ok.as_str(), account_ok.expose_secret()),
            );
            update = Some((
                m.id.clone(),
                m.account_id.clone(),
                routing_ok.as_str().to_string(),
                account_type,
                account_ok.last4(),
                fp,
                sealed,
            ));
        }
        let claim = AchReturnItemRow {
            item_key: format!("noc:{trace}:{code}"),
            kind: "noc".into(),
            code: code.into(),
            original_trace: trace.into(),
            entry_id: entry.as_ref().map(|e| e.id.clone()),
            file_sha256: sha.into(),
            outcome: match (&entry, &update) {
                (None, _) => "unmatched",
                (Some(_), Some(_)) => "saved_method_updated",
                (Some(_), None) => "noted",
            }
            .into(),
            applied_at: now,
        };
        let unmatched = entry.is_none();
        let audit_id = self.new_id("aud");
        let code_s = code.to_string();
        let first = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !q::claim_return_item(c, &claim).await? {
                        return Ok(false);
                    }
                    if let Some((id, account_id, routing, account_type, last4, fp, sealed)) = update
                    {
                        let sealed_ref = sealed.as_ref().map(|s| {
                            (
                                i64::from(s.kek_version),
                                s.wrapped_key.as_str(),
                                s.ciphertext.as_str(),
                            )
                        });
                        if q::correct_bank_method(
                            c,
                            &id,
                            &routing,
                            &account_type,
                            &last4,
                            &fp,
                            sealed_ref,
                            now,
                        )
                        .await?
                        {
                            crate::vault::audit(
                                c,
                                audit_id,
                                now,
                                &crate::vault::Actor {
                                    id: "system:ach-noc".into(),
                                    channel: Channel::Api,
                                },
                                "vault.update",
                                &id,
                                &account_id,
                                serde_json::json!({"notice_of_change": code_s, "last4": last4}),
                            )
                            .await?;
                        }
                    }
                    Ok::<_, ServiceError>(true)
                })
            })
            .await?;
        if !first {
            report.already_applied += 1;
        } else if unmatched {
            report.unmatched.push(format!(
                "notice of change {code} for trace {trace}: no entry with this trace"
            ));
        } else {
            report.corrections_applied += 1;
        }
        Ok(())
    }
}
