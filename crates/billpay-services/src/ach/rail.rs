//! The processor for bank debits billpay originates: entries, prenotes, credits, settlement.

use super::*;

/// Bank debits through NACHA files; everything else through `inner`.
pub struct NachaRail {
    pub inner: Arc<dyn Processor>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub vault: Option<Arc<Vault>>,
    pub config: AchConfig,
    pub biller: crate::BillerProfile,
    pub timezone: String,
    /// A bank-account validation service asked before a prenote is sent, if configured.
    pub validator: Option<Arc<dyn AccountValidator>>,
}

impl NachaRail {
    fn today(&self) -> jiff::civil::Date {
        let tz = jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        self.clock.now().to_zoned(tz).date()
    }

    fn new_id(&self, prefix: &str) -> String {
        crate::clock::new_id(prefix, self.clock.as_ref(), self.random.as_ref())
    }

    fn authorization_text(
        &self,
        sec: SecCode,
        amount: Money,
        account_type: BankAccountType,
        last4: &str,
        holder: &str,
    ) -> String {
        let how = match sec {
            SecCode::Ppd => "a recurring ACH debit, on the terms of your AutoPay enrollment,",
            _ => "a single ACH debit",
        };
        format!(
            "On {}, {} authorized {} to make {} of {} from the {} account ending in {}. \
             To revoke this authorization before the debit is sent, call {}.",
            self.today(),
            if holder.is_empty() {
                "the account holder"
            } else {
                holder
            },
            self.biller.name,
            how,
            amount,
            account_type.as_str(),
            last4,
            self.biller.support_phone
        )
    }

    async fn originate(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError> {
        let ChargeMethod::Bank {
            routing,
            account,
            account_type,
            holder_name,
        } = &req.method
        else {
            return Err(ProcessorError::Rejected("not a bank debit".into()));
        };
        {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            if let Some(existing) = q::entry_by_key(&mut c, &req.key).await.map_err(store_err)? {
                return Ok(entry_outcome(&existing));
            }
        }
        let ctx = &req.context;
        let channel = ctx.channel.ok_or_else(|| {
            ProcessorError::Rejected("a bank debit needs the channel it was authorized on".into())
        })?;
        let sec = sec_code_for(channel).ok_or_else(|| {
            ProcessorError::Rejected(format!("no ACH debit can be authorized by {channel:?}"))
        })?;
        let vault = self.vault.as_ref().ok_or_else(|| {
            ProcessorError::Unavailable(
                "the vault keyring is needed to originate bank debits".into(),
            )
        })?;
        let keyring = vault.keyring();
        let rng = |buf: &mut [u8]| self.random.fill(buf);
        let fingerprint = keyring.fingerprint(
            "ach",
            &format!("{}:{}", routing.as_str(), account.expose_secret()),
        );
        let now = self.clock.now_micros();
        let savings = *account_type == BankAccountType::Savings;
        let holder = nacha_text(holder_name, 22);
        let authorization = ctx.authorization.clone().unwrap_or_else(|| {
            self.authorization_text(
                sec,
                req.amount,
                *account_type,
                &account.last4(),
                holder_name,
            )
        });
        let entry_id = self.new_id("ach");
        let sealed = keyring
            .seal(&entry_id, account.expose_secret().as_bytes(), &rng)
            .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
        let base = AchEntryRow {
            id: entry_id.clone(),
            processor_key: req.key.clone(),
            payment_id: Some(ctx.payment_id.clone()).filter(|s| !s.is_empty()),
            refund_id: None,
            account_id: ctx.account_id.clone(),
            purpose: "debit".into(),
            sec_code: sec.as_str().into(),
            transaction_code: i64::from(TransactionCode::debit(savings, false).code()),
            routing_number: routing.as_str().into(),
            account_type: account_type.as_str().into(),
            account_last4: account.last4(),
            account_fingerprint: fingerprint.clone(),
            kek_version: Some(i64::from(sealed.kek_version)),
            wrapped_key: Some(sealed.wrapped_key),
            ciphertext: Some(sealed.ciphertext),
            individual_name: holder,
            individual_id: nacha_text(&ctx.account_number, 15),
            amount: req.amount.minor_units(),
            currency: req.amount.currency().code().into(),
            channel: channel.as_str().into(),
            authorization_text: authorization,
            authorized_at: now,
            payment_method_id: ctx.payment_method_id.clone(),
            status: "pending".into(),
            hold_until: None,
            prenote_id: None,
            file_id: None,
            trace_number: None,
            effective_date: None,
            return_code: None,
            returned_at: None,
            settled_at: None,
            created_at: now,
            updated_at: now,
        };
        // A prenote for an account seen for the first time, prepared outside the transaction
        // (sealing needs the keyring); used only if the account turns out to be new.
        let prenote = (sec == SecCode::Web && self.config.prenote != PrenotePolicy::Off)
            .then(|| -> Result<AchEntryRow, ProcessorError> {
                let id = self.new_id("ach");
                let sealed = keyring
                    .seal(&id, account.expose_secret().as_bytes(), &rng)
                    .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
                Ok(AchEntryRow {
                    id,
                    processor_key: format!("prenote:{fingerprint}"),
                    payment_id: None,
                    purpose: "prenote".into(),
                    transaction_code: i64::from(TransactionCode::debit(savings, true).code()),
                    kek_version: Some(i64::from(sealed.kek_version)),
                    wrapped_key: Some(sealed.wrapped_key),
                    ciphertext: Some(sealed.ciphertext),
                    amount: 0,
                    payment_method_id: None,
                    ..base.clone()
                })
            })
            .transpose()?;
        // A validation service, when there is one, answers for an account seen for the first
        // time; only when it cannot tell does the prenote go out.
        let service_answer = match (&prenote, &self.validator) {
            (Some(_), Some(v)) => {
                let known = {
                    let mut c = self.store.read_conn().await.map_err(store_err)?;
                    q::validation(&mut c, &fingerprint)
                        .await
                        .map_err(store_err)?
                };
                if known.is_none() {
                    Some(v.validate(routing, account, *account_type).await)
                } else {
                    None
                }
            }
            _ => None,
        };
        let hold_for = self.config.prenote_hold_days * 86_400_000_000;
        let policy = self.config.prenote;
        let outcome = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if let Some(existing) = q::entry_by_key(c, &base.processor_key).await? {
                        return Ok(entry_outcome(&existing));
                    }
                    let mut entry = base;
                    if let Some(prenote) = prenote {
                        match q::validation(c, &entry.account_fingerprint).await? {
                            Some(v) if v.status == "validated" => {}
                            Some(v) if v.status == "failed" => {
                                let code = v.return_code.clone().unwrap_or_else(|| "R03".into());
                                entry.status = "declined".into();
                                entry.return_code = Some(code);
                                entry.kek_version = None;
                                entry.wrapped_key = None;
                                entry.ciphertext = None;
                            }
                            Some(v) => {
                                let pre = match &v.prenote_id {
                                    Some(id) => q::entry_by_id(c, id).await?,
                                    None => None,
                                };
                                let until = pre.as_ref().map(|p| p.created_at + hold_for);
                                match until {
                                    Some(u) if u <= now => {
                                        q::upsert_validation(
                                            c,
                                            &AchValidationRow {
                                                status: "validated".into(),
                                                updated_at: now,
                                                ..v
                                            },
                                        )
                                        .await?;
                                    }
                                    _ if policy == PrenotePolicy::Hold => {
                                        entry.status = "held".into();
                                        entry.hold_until = Some(until.unwrap_or(now + hold_for));
                                        entry.prenote_id = v.prenote_id.clone();
                                    }
                                    _ => {}
                                }
                            }
                            None if matches!(
                                service_answer,
                                Some(AccountValidation::Valid)
                                    | Some(AccountValidation::Invalid { .. })
                            ) =>
                            {
                                let failed = match &service_answer {
                                    Some(AccountValidation::Invalid { code }) => Some(code.clone()),
                                    _ => None,
                                };
                                q::upsert_validation(
                                    c,
                                    &AchValidationRow {
                                        account_fingerprint: entry.account_fingerprint.clone(),
                                        status: if failed.is_some() {
                                            "failed"
                                        } else {
                                            "validated"
                                        }
                                        .into(),
                                        prenote_id: None,
                                        return_code: failed.clone(),
                                        created_at: now,
                                        updated_at: now,
                                    },
                                )
                                .await?;
                                if let Some(code) = failed {
                                    entry.status = "declined".into();
                                    entry.return_code = Some(code);
                                    entry.kek_version = None;
                                    entry.wrapped_key = None;
                                    entry.ciphertext = None;
                                }
                            }
                            None => {
                                q::insert_entry(c, &prenote).await?;
                                q::upsert_validation(
                                    c,
                                    &AchValidationRow {
                                        account_fingerprint: entry.account_fingerprint.clone(),
                                        status: "pending".into(),
                                        prenote_id: Some(prenote.id.clone()),
                                        return_code: None,
                                        created_at: now,
                                        updated_at: now,
                                    },
                                )
                                .await?;
                                if policy == PrenotePolicy::Hold {
                                    entry.status = "held".into();
                                    entry.hold_until = Some(now + hold_for);
                                    entry.prenote_id = Some(prenote.id.clone());
                                }
                            }
                        }
                    }
                    q::insert_entry(c, &entry).await?;
                    Ok::<_, ServiceError>(entry_outcome(&entry))
                })
            })
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        Ok(outcome)
    }

    /// A credit back to the bank account of a debit (a refund), or the debit canceled if it has
    /// not been sent yet and the whole amount is refunded.
    async fn credit(
        &self,
        key: &str,
        debit_id: &str,
        amount: Option<Money>,
    ) -> Result<RefundOutcome, ProcessorError> {
        let (debit, existing) = {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            (
                q::entry_by_id(&mut c, debit_id).await.map_err(store_err)?,
                q::entry_by_key(&mut c, key).await.map_err(store_err)?,
            )
        };
        if let Some(e) = existing {
            return Ok(RefundOutcome::Refunded { reference: e.id });
        }
        let debit = debit
            .ok_or_else(|| ProcessorError::Rejected("no ACH entry with this reference".into()))?;
        let amount = amount.map(|a| a.minor_units()).unwrap_or(debit.amount);
        let now = self.clock.now_micros();
        let id = self.new_id("ach");
        let unsent = matches!(debit.status.as_str(), "pending" | "held");
        let (status, sealed) = if unsent && amount == debit.amount {
            ("canceled", None)
        } else {
            let vault = self.vault.as_ref().ok_or_else(|| {
                ProcessorError::Unavailable("the vault keyring is needed for ACH credits".into())
            })?;
            let old = sealed_of(&debit).ok_or_else(|| {
                ProcessorError::Rejected(
                    "the bank account of this payment is no longer on file".into(),
                )
            })?;
            let plain = vault
                .open(&debit.id, &old)
                .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
            let rng = |buf: &mut [u8]| self.random.fill(buf);
            let sealed = vault
                .keyring()
                .seal(&id, &plain, &rng)
                .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
            ("pending", Some(sealed))
        };
        let savings = debit.account_type == "savings";
        let row = AchEntryRow {
            id: id.clone(),
            processor_key: key.into(),
            refund_id: None,
            purpose: "credit".into(),
            transaction_code: i64::from(TransactionCode::credit(savings, false).code()),
            kek_version: sealed.as_ref().map(|s| i64::from(s.kek_version)),
            wrapped_key: sealed.as_ref().map(|s| s.wrapped_key.clone()),
            ciphertext: sealed.map(|s| s.ciphertext),
            amount,
            status: status.into(),
            hold_until: None,
            prenote_id: None,
            file_id: None,
            trace_number: None,
            effective_date: None,
            return_code: None,
            returned_at: None,
            settled_at: None,
            created_at: now,
            updated_at: now,
            ..debit.clone()
        };
        let debit_id = debit.id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if status == "canceled"
                        && !q::set_entry_status(c, &debit_id, "pending", "canceled", now).await?
                        && !q::set_entry_status(c, &debit_id, "held", "canceled", now).await?
                    {
                        return Err(ServiceError::Conflict {
                            code: "ach_entry_sent",
                            message: "the debit was sent to the bank meanwhile; try again".into(),
                        });
                    }
                    q::insert_entry(c, &row).await?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        Ok(RefundOutcome::Refunded { reference: id })
    }
}

fn entry_outcome(e: &AchEntryRow) -> ChargeOutcome {
    match (e.status.as_str(), &e.return_code) {
        ("declined", Some(code)) => ChargeOutcome::Declined {
            code: return_decline(code),
            reference: Some(e.id.clone()),
        },
        _ => ChargeOutcome::Accepted {
            reference: e.id.clone(),
        },
    }
}

fn is_entry_reference(reference: &str) -> bool {
    reference.starts_with("ach_")
}

#[async_trait]
impl Processor for NachaRail {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError> {
        match req.method {
            ChargeMethod::Bank { .. } => self.originate(req).await,
            ChargeMethod::Card { .. } => self.inner.charge(req).await,
        }
    }

    async fn refund(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<RefundOutcome, ProcessorError> {
        if is_entry_reference(charge_reference) {
            return self.credit(key, charge_reference, Some(amount)).await;
        }
        self.inner.refund(key, charge_reference, amount).await
    }

    async fn void(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<RefundOutcome, ProcessorError> {
        if is_entry_reference(charge_reference) {
            return self.credit(key, charge_reference, None).await;
        }
        self.inner.void(key, charge_reference).await
    }

    async fn lookup(&self, key: &str) -> Result<Lookup, ProcessorError> {
        let found = {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            q::entry_by_key(&mut c, key).await.map_err(store_err)?
        };
        match found {
            Some(e) if e.purpose == "credit" => {
                Ok(Lookup::Refund(RefundOutcome::Refunded { reference: e.id }))
            }
            Some(e) => Ok(Lookup::Charge(entry_outcome(&e))),
            None => self.inner.lookup(key).await,
        }
    }

    /// The inner processor's charges; bank debits billpay originates itself are in its own
    /// NACHA files, not at a processor.
    async fn transactions(
        &self,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Option<Vec<crate::processor::ProcessorTx>>, ProcessorError> {
        self.inner.transactions(from_micros, to_micros).await
    }

    async fn lookup_refund(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<Lookup, ProcessorError> {
        if is_entry_reference(charge_reference) {
            return self.lookup(key).await;
        }
        self.inner.lookup_refund(key, charge_reference).await
    }

    async fn settlement(&self, reference: &str) -> Result<Settlement, ProcessorError> {
        if !is_entry_reference(reference) {
            return self.inner.settlement(reference).await;
        }
        let e = {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            q::entry_by_id(&mut c, reference)
                .await
                .map_err(store_err)?
                .ok_or_else(|| {
                    ProcessorError::Rejected("no ACH entry with this reference".into())
                })?
        };
        match e.status.as_str() {
            "returned" => Ok(Settlement::Returned(return_decline(
                e.return_code.as_deref().unwrap_or("R06"),
            ))),
            "settled" => Ok(Settlement::Settled),
            "exported" => {
                let due = e
                    .effective_date
                    .as_deref()
                    .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                    .map(|d| add_business_days(d, self.config.settlement_days));
                if due.is_some_and(|d| d <= self.today()) {
                    let now = self.clock.now_micros();
                    let id = e.id.clone();
                    self.store
                        .write(move |c| {
                            Box::pin(async move {
                                q::set_entry_status(c, &id, "exported", "settled", now).await
                            })
                        })
                        .await
                        .map_err(store_err)?;
                    Ok(Settlement::Settled)
                } else {
                    Ok(Settlement::Pending)
                }
            }
            _ => Ok(Settlement::Pending),
        }
    }
}
