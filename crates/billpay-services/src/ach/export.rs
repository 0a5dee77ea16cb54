//! NACHA files: binding ready entries to a file, writing it durably, finishing an interrupted one;
//! and the upkeep of sealed account numbers (destruction after the return window, re-wrapping).

use super::*;

impl Billpay {
    /// Writes every entry ready to go into NACHA files in `dir` (one file per run, plus any
    /// file an interrupted run left unfinished, rebuilt identically). Entries are bound to their
    /// file in one transaction before the file is written, so none is ever in two files.
    pub async fn export_ach(&self, dir: &Path) -> Result<Vec<ExportedFile>, ServiceError> {
        let mut out = Vec::new();
        let unfinished = {
            let mut c = self.store.read_conn().await?;
            q::files_building(&mut c).await?
        };
        for f in unfinished {
            out.push(self.write_ach_file(dir, f, true).await?);
        }
        if let Some(f) = self.bind_ready_entries().await? {
            out.push(self.write_ach_file(dir, f, false).await?);
        }
        Ok(out)
    }

    /// Binds ready entries to a new file row; None when nothing is ready.
    async fn bind_ready_entries(&self) -> Result<Option<AchFileRow>, ServiceError> {
        let now = self.clock.now_micros();
        let (local_now, today) = self.biller_today();
        let effective = add_business_days(today, 1).to_string();
        let odfi8: String = self.ach().odfi_routing.chars().take(8).collect();
        let file_id = self.new_id("achf");
        let creation_local = local_now
            .round(jiff::Unit::Minute)
            .unwrap_or(local_now)
            .strftime("%Y-%m-%dT%H:%M")
            .to_string();
        let date_prefix = today.to_string();
        let row = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let ready = q::entries_ready(c, now, 100_000).await?;
                    if ready.is_empty() {
                        return Ok(None);
                    }
                    let n_today = q::files_on(c, &date_prefix).await?;
                    let modifier = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        .get(usize::try_from(n_today).unwrap_or(usize::MAX))
                        .map(|b| char::from(*b))
                        .ok_or_else(|| ServiceError::Conflict {
                            code: "ach_file_limit",
                            message: "36 ACH files were already created today (the NACHA file id \
                                      modifier runs A to Z, then 0 to 9)"
                                .into(),
                        })?;
                    let file = AchFileRow {
                        id: file_id.clone(),
                        file_name: format!("ach-{}-{}.ach", date_prefix.replace('-', ""), modifier),
                        file_id_modifier: modifier.to_string(),
                        created_at: now,
                        creation_local,
                        status: "building".into(),
                        entry_count: 0,
                        debit_total: 0,
                        credit_total: 0,
                        sha256: None,
                        written_at: None,
                    };
                    q::insert_file(c, &file).await?;
                    let first =
                        q::next_sequence(c, &format!("trace:{odfi8}"), ready.len() as i64).await?;
                    let (mut count, mut debits, mut credits) = (0i64, 0i64, 0i64);
                    for (i, e) in ready.iter().enumerate() {
                        let seq = (first + i as i64) % 10_000_000;
                        let trace = format!("{odfi8}{seq:07}");
                        if q::assign_entry(c, &e.id, &file_id, &trace, &effective, now).await? {
                            count += 1;
                            if e.purpose == "credit" {
                                credits += e.amount;
                            } else {
                                debits += e.amount;
                            }
                        }
                    }
                    q::update_file_totals(c, &file_id, count, debits, credits).await?;
                    Ok::<_, ServiceError>(Some(AchFileRow {
                        entry_count: count,
                        debit_total: debits,
                        credit_total: credits,
                        ..file
                    }))
                })
            })
            .await?;
        Ok(row)
    }

    /// Builds the NACHA file of a bound file row from the database, deterministically.
    async fn build_ach_file(&self, f: &AchFileRow) -> Result<AchFile, ServiceError> {
        let entries = {
            let mut c = self.store.read_conn().await?;
            q::entries_in_file(&mut c, &f.id).await?
        };
        let vault = self.vault()?;
        let cfg = self.ach();
        let creation = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", &f.creation_local)
            .map_err(|e| StoreError::Corrupt(format!("ACH file creation time: {e}")))?;
        let mut groups: std::collections::BTreeMap<(String, String), Vec<Entry>> =
            Default::default();
        for e in &entries {
            let sealed = sealed_of(e).ok_or_else(|| {
                StoreError::Corrupt(format!("ACH entry {} has no sealed account number", e.id))
            })?;
            let plain = vault
                .open(&e.id, &sealed)
                .map_err(crate::vault::vault_error)?;
            let account = String::from_utf8(plain.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("ACH entry {} account", e.id)))?;
            let code = u8::try_from(e.transaction_code)
                .ok()
                .and_then(TransactionCode::from_code)
                .ok_or_else(|| StoreError::Corrupt(format!("ACH entry {} code", e.id)))?;
            let sec = e.sec_code.clone();
            groups
                .entry((sec.clone(), e.effective_date.clone().unwrap_or_default()))
                .or_default()
                .push(Entry {
                    transaction_code: code,
                    rdfi_routing: e.routing_number.clone(),
                    account_number: account,
                    amount: e.amount,
                    individual_id: e.individual_id.clone(),
                    individual_name: e.individual_name.clone(),
                    discretionary_data: if sec == "WEB" || sec == "TEL" {
                        "S".into()
                    } else {
                        String::new()
                    },
                    trace_number: e.trace_number.clone().unwrap_or_default(),
                    addenda: Vec::new(),
                });
        }
        let odfi8: String = cfg.odfi_routing.chars().take(8).collect();
        let mut batches = Vec::new();
        for (i, ((sec, date), entries)) in groups.into_iter().enumerate() {
            batches.push(Batch {
                company_name: nacha_text(&cfg.company_name, 16),
                company_discretionary_data: String::new(),
                company_id: cfg.company_id.clone(),
                sec: SecCode::parse(&sec)
                    .ok_or_else(|| StoreError::Corrupt(format!("SEC code {sec}")))?,
                entry_description: nacha_text(&cfg.entry_description, 10),
                descriptive_date: String::new(),
                effective_date: date
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("effective date {date}")))?,
                odfi_id: odfi8.clone(),
                batch_number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                entries,
            });
        }
        Ok(AchFile {
            header: FileHeader {
                immediate_destination: cfg.odfi_routing.clone(),
                immediate_origin: cfg.origin_id.clone(),
                creation,
                file_id_modifier: f.file_id_modifier.chars().next().unwrap_or('A'),
                destination_name: nacha_text(&cfg.odfi_name, 23),
                origin_name: nacha_text(&cfg.origin_name, 23),
                reference_code: String::new(),
            },
            batches,
        })
    }

    async fn write_ach_file(
        &self,
        dir: &Path,
        f: AchFileRow,
        recovered: bool,
    ) -> Result<ExportedFile, ServiceError> {
        let file = self.build_ach_file(&f).await?;
        let text = nacha::write_file(&file).map_err(|e| {
            ServiceError::invalid("ach", format!("the NACHA file could not be written: {e}"))
        })?;
        let sha = sha256_hex(text.as_bytes());
        let path = dir.join(&f.file_name);
        write_durably(&path, text.as_bytes()).map_err(|e| {
            ServiceError::invalid("dir", format!("could not write {}: {e}", path.display()))
        })?;
        drop(text);
        let now = self.clock.now_micros();
        let id = f.id.clone();
        let sha_w = sha.clone();
        self.store
            .write(move |c| {
                Box::pin(async move { q::mark_file_written(c, &id, &sha_w, now).await })
            })
            .await?;
        let cur = billpay_domain::Currency::USD;
        Ok(ExportedFile {
            id: f.id,
            path,
            entries: f.entry_count,
            debit_total: Money::new(f.debit_total, cur),
            credit_total: Money::new(f.credit_total, cur),
            sha256: sha,
            recovered,
        })
    }

    /// NACHA files written so far, newest first.
    pub async fn ach_files(&self, limit: i64) -> Result<Vec<AchFileRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::files(&mut c, limit.clamp(1, 500)).await?)
    }

    /// The ACH entries of a payment (its debit, any prenote it waited for, refund credits).
    pub async fn ach_entries_of_payment(
        &self,
        payment_id: &str,
    ) -> Result<Vec<AchEntryRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::entries_of_payment(&mut c, payment_id).await?)
    }

    /// Destroys the sealed account numbers of entries past their return window.
    pub async fn forget_old_ach_accounts(&self) -> Result<u64, ServiceError> {
        let before = self.clock.now_micros() - self.ach().retain_account_days * 86_400_000_000;
        Ok(self
            .store
            .write(move |c| Box::pin(async move { q::forget_account_numbers(c, before).await }))
            .await?)
    }

    /// Re-wraps sealed ACH entries under the active key version.
    pub async fn rewrap_ach_entries(&self) -> Result<u64, ServiceError> {
        let vault = self.vault()?;
        let keyring = vault.keyring();
        let active = i64::from(keyring.active_version());
        let mut done = 0;
        loop {
            let batch = {
                let mut c = self.store.read_conn().await?;
                q::entries_under_old_key(&mut c, active, 100).await?
            };
            if batch.is_empty() {
                return Ok(done);
            }
            let mut updates = Vec::new();
            for e in &batch {
                let Some(sealed) = sealed_of(e) else { continue };
                let rng = |buf: &mut [u8]| self.random.fill(buf);
                let new = keyring
                    .rewrap(&e.id, &sealed, &rng)
                    .map_err(crate::vault::vault_error)?;
                updates.push((e.id.clone(), i64::from(sealed.kek_version), new));
            }
            let n = self
                .store
                .write(move |c| {
                    Box::pin(async move {
                        let mut n = 0u64;
                        for (id, old, new) in updates {
                            if q::rewrap_entry(
                                c,
                                &id,
                                old,
                                i64::from(new.kek_version),
                                &new.wrapped_key,
                            )
                            .await?
                            {
                                n += 1;
                            }
                        }
                        Ok::<_, StoreError>(n)
                    })
                })
                .await?;
            if n == 0 {
                return Ok(done);
            }
            done += n;
        }
    }

    /// Sealed ACH entries per key version.
    pub async fn ach_entries_per_key_version(&self) -> Result<Vec<(i64, i64)>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::entries_per_key_version(&mut c).await?)
    }
}

/// Writes `bytes` to `path` so that it is on disk before this returns: a temporary file in
/// the same directory, synced, renamed over `path`, and the directory synced.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
