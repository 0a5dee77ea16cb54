//! The operator dashboard: what supervisors and administrators see at a glance on the desk —
//! payments and amounts per day by channel and method, declines and returns by reason, the
//! phone line (calls, containment, abandonment, time to pay), live chat (volume, wait, hand-off
//! rate), accounts by status and AutoPay enrolment.
//!
//! Every figure is read from the database by the store's dashboard queries, grouped by the
//! biller's local day (`ivr_timezone`) with the same day boundaries as the posting file, so a
//! day's payment total here is that day's posting file's payment total. Money stays in integer
//! minor units; only ratios (containment, hand-off rate) are divided, and those from integers.

use billpay_domain::{Channel, Currency, DeclineCode, Language, Money};
use billpay_store::dashboard::{self as q, DayRange};
use jiff::civil::Date;

use crate::staff::{Role, Staff};
use crate::{Billpay, ServiceError};

/// The longest range one dashboard shows, in days.
pub const DASHBOARD_DAYS_MAX: i64 = 92;
/// The range shown when none is asked for: the last 14 days, today included.
pub const DASHBOARD_DAYS_DEFAULT: i64 = 14;
/// Most phone calls read for one dashboard; the figures say when there were more.
pub const DASHBOARD_CALLS_MAX: i64 = 200_000;

/// The methods a payment's `method_type` can be, in the order shown.
pub const METHODS: [&str; 3] = ["card", "ach", "check"];

/// What the dashboard shows: a range of the biller's days, and optionally one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardFilter {
    pub from: Date,
    pub to: Date,
    pub channel: Option<Channel>,
}

/// A query value, trimmed; empty is absent.
fn blank(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

fn parse_day(param: &str, value: &str) -> Result<Date, ServiceError> {
    value.trim().parse().map_err(|_| {
        ServiceError::invalid(
            param,
            format!("{param} must be a day as YYYY-MM-DD, like 2026-12-04"),
        )
    })
}

impl DashboardFilter {
    /// Parses the page's query: `from` and `to` (YYYY-MM-DD, inclusive; default the last
    /// [`DASHBOARD_DAYS_DEFAULT`] days to `today`), and `channel` (empty or absent: all).
    /// Errors name the parameter and say what is accepted.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        channel: Option<&str>,
        today: Date,
    ) -> Result<DashboardFilter, ServiceError> {
        let to = match blank(to) {
            Some(v) => parse_day("to", v)?,
            None => today,
        };
        let from = match blank(from) {
            Some(v) => parse_day("from", v)?,
            None => to
                .checked_sub(jiff::Span::new().days(DASHBOARD_DAYS_DEFAULT - 1))
                .map_err(|_| ServiceError::invalid("to", "to is out of range"))?,
        };
        if from > to {
            return Err(ServiceError::invalid(
                "from",
                "from must be on or before to",
            ));
        }
        // Date - Date is a span of whole days.
        let days = i64::from((to - from).get_days()) + 1;
        if days > DASHBOARD_DAYS_MAX {
            return Err(ServiceError::invalid(
                "to",
                format!(
                    "the range can be at most {DASHBOARD_DAYS_MAX} days; choose a later from or an earlier to"
                ),
            ));
        }
        let channel = match blank(channel) {
            None => None,
            Some(v) => Some(Channel::parse(v).ok_or_else(|| {
                let all: Vec<&str> = Channel::ALL.iter().map(Channel::as_str).collect();
                ServiceError::invalid(
                    "channel",
                    format!(
                        "channel must be one of {}, or empty for all",
                        all.join(", ")
                    ),
                )
            })?),
        };
        Ok(DashboardFilter { from, to, channel })
    }

    /// Each day of the range, in order.
    pub fn days(&self) -> Vec<Date> {
        let mut out = Vec::new();
        let mut d = self.from;
        while d <= self.to {
            out.push(d);
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        out
    }
}

/// One line of a chart: a name and one value per day (a count, or minor units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    pub name: String,
    pub values: Vec<i64>,
}

impl Series {
    pub fn total(&self) -> i64 {
        self.values.iter().sum()
    }
}

/// A reason (decline or return code) and how often it happened in the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonTotal {
    pub code: String,
    pub meaning: String,
    pub count: i64,
}

/// The phone line over the range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IvrStats {
    pub calls: i64,
    /// Calls in which a payment was made and no representative was asked for.
    pub contained: i64,
    /// Calls transferred to a representative.
    pub transferred: i64,
    /// Calls that ended with no payment, no transfer, before the call flow's goodbye.
    pub abandoned: i64,
    /// Average seconds from a contained call's start to its last step.
    pub average_secs_to_pay: Option<i64>,
    /// Calls per day.
    pub per_day: Vec<i64>,
    /// More calls than [`DASHBOARD_CALLS_MAX`] began in the range; the figures cover the first.
    pub truncated: bool,
}

/// Live chat over the range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatStats {
    pub conversations: i64,
    /// Conversations the assistant handed to a person.
    pub handed_over: i64,
    /// Of those, how many a person answered.
    pub answered: i64,
    /// Average seconds from joining the queue to a person's first message.
    pub average_wait_secs: Option<i64>,
    pub per_day: Vec<i64>,
    pub handed_over_per_day: Vec<i64>,
}

/// Accounts now, each in one group: suspended first, then in an arrangement, then past due,
/// else current.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountStats {
    pub current: i64,
    pub past_due: i64,
    pub suspended: i64,
    pub in_arrangement: i64,
    pub total: i64,
    /// Accounts with AutoPay on.
    pub autopay: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dashboard {
    pub filter: DashboardFilter,
    pub timezone: String,
    /// Amounts are in this currency (the biller's; payments in another are counted apart).
    pub currency: Currency,
    pub days: Vec<Date>,
    /// Payments posted per day, one series per channel (only channels with payments).
    pub count_by_channel: Vec<Series>,
    /// Amounts posted per day (minor units), one series per channel.
    pub amount_by_channel: Vec<Series>,
    /// Payments posted per day, one series per method type.
    pub count_by_method: Vec<Series>,
    pub amount_by_method: Vec<Series>,
    pub payments: i64,
    pub amount: Money,
    /// Payments posted in another currency than `currency` (not in the amounts).
    pub other_currency_payments: i64,
    /// Declines per day by code, and their totals.
    pub declines: Vec<Series>,
    pub decline_totals: Vec<ReasonTotal>,
    /// Bank-debit returns per day by R-code, and their totals.
    pub returns: Vec<Series>,
    pub return_totals: Vec<ReasonTotal>,
    pub ivr: IvrStats,
    pub chat: ChatStats,
    pub accounts: AccountStats,
    /// The fraud rules' decisions per day, one series per action (allow, review, block).
    pub risk: Vec<Series>,
    /// Refusals by the fraud rules, by rule (a refusal with two reasons counts for both).
    pub refusal_totals: Vec<ReasonTotal>,
}

/// `part` of `whole` as a percentage with one decimal ("42.9%"), from integers; "–" of nothing.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".into();
    }
    let tenths = (i128::from(part) * 1000 + i128::from(whole) / 2) / i128::from(whole);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

fn reason_meaning(code: &str) -> String {
    DeclineCode::parse(code)
        .map(|c| c.message(Language::En).to_string())
        .unwrap_or_else(|| "no code recorded".into())
}

/// Rows of (day, key, value) as one series per key, in `keys` order first, then any other key
/// in order of appearance; keys with nothing in the range are left out.
fn series_of<'a>(
    days: &[String],
    keys: &[&str],
    rows: impl Iterator<Item = (&'a str, &'a str, i64)>,
) -> Vec<Series> {
    let mut out: Vec<Series> = keys
        .iter()
        .map(|k| Series {
            name: (*k).to_string(),
            values: vec![0; days.len()],
        })
        .collect();
    for (day, key, value) in rows {
        let Some(i) = days.iter().position(|d| d == day) else {
            continue;
        };
        let at = match out.iter().position(|s| s.name == key) {
            Some(at) => at,
            None => {
                out.push(Series {
                    name: key.to_string(),
                    values: vec![0; days.len()],
                });
                out.len() - 1
            }
        };
        out[at].values[i] += value;
    }
    out.retain(|s| s.values.iter().any(|v| *v != 0));
    out
}

fn reason_totals(series: &[Series]) -> Vec<ReasonTotal> {
    let mut t: Vec<ReasonTotal> = series
        .iter()
        .map(|s| ReasonTotal {
            code: s.name.clone(),
            meaning: reason_meaning(&s.name),
            count: s.total(),
        })
        .collect();
    t.sort_by_key(|r| std::cmp::Reverse(r.count));
    t
}

/// Refusals per rule, most first, from counts per list of reasons.
fn refusal_totals(by_list: &[(String, i64)]) -> Vec<ReasonTotal> {
    let mut by: std::collections::BTreeMap<&str, i64> = Default::default();
    for (list, n) in by_list {
        for code in list.split(',').filter(|c| !c.is_empty()) {
            *by.entry(code).or_default() += n;
        }
    }
    let mut t: Vec<ReasonTotal> = by
        .into_iter()
        .map(|(code, count)| ReasonTotal {
            code: code.to_string(),
            meaning: billpay_domain::risk::RiskReason::parse(code)
                .map(|r| r.describe().to_string())
                .unwrap_or_else(|| "a rule of an earlier version".into()),
            count,
        })
        .collect();
    t.sort_by_key(|r| std::cmp::Reverse(r.count));
    t
}

/// The console (dashboard and reports) is for supervisors and administrators.
fn console_allowed(staff: &Staff) -> Result<(), ServiceError> {
    if staff.role < Role::Supervisor {
        return Err(ServiceError::Conflict {
            code: "forbidden",
            message: "The dashboard and reports are for supervisors and administrators.".into(),
        });
    }
    Ok(())
}

impl Billpay {
    /// The reports page of a day: its posting file and the aging report as of its end.
    pub async fn desk_reports(
        &self,
        staff: &Staff,
        day: Date,
    ) -> Result<(crate::reports::PostingFile, crate::reports::AgingReport), ServiceError> {
        console_allowed(staff)?;
        Ok((self.posting_file(day).await?, self.aging_report(day).await?))
    }

    /// [`Billpay::posting_file`] for a supervisor on the desk.
    pub async fn desk_posting_file(
        &self,
        staff: &Staff,
        day: Date,
    ) -> Result<crate::reports::PostingFile, ServiceError> {
        console_allowed(staff)?;
        self.posting_file(day).await
    }

    /// [`Billpay::aging_report`] for a supervisor on the desk.
    pub async fn desk_aging_report(
        &self,
        staff: &Staff,
        day: Date,
    ) -> Result<crate::reports::AgingReport, ServiceError> {
        console_allowed(staff)?;
        self.aging_report(day).await
    }

    /// [`Billpay::settlement_report`] for a supervisor on the desk.
    pub async fn desk_settlement_report(
        &self,
        staff: &Staff,
        day: Date,
    ) -> Result<crate::settlement::SettlementReport, ServiceError> {
        console_allowed(staff)?;
        self.settlement_report(day).await
    }

    /// The dashboard for `filter`; supervisors and administrators only.
    pub async fn dashboard(
        &self,
        staff: &Staff,
        filter: DashboardFilter,
    ) -> Result<Dashboard, ServiceError> {
        console_allowed(staff)?;
        let tz_name = self.config().ivr.timezone.clone();
        let tz = crate::accounts::tz_named(&tz_name);
        let days = filter.days();
        let ranges: Vec<DayRange> = days
            .iter()
            .map(|d| {
                let from =
                    billpay_domain::calendar::local_instant(*d, jiff::civil::Time::midnight(), &tz);
                let to = d.tomorrow().map(|n| {
                    billpay_domain::calendar::local_instant(n, jiff::civil::Time::midnight(), &tz)
                });
                DayRange {
                    day: d.to_string(),
                    from: from.as_microsecond(),
                    to: to.map(|t| t.as_microsecond()).unwrap_or(i64::MAX),
                }
            })
            .collect();
        let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
            return Err(ServiceError::invalid("from", "the range has no days"));
        };
        let (range_from, range_to) = (first.from, last.to);
        let names: Vec<String> = ranges.iter().map(|r| r.day.clone()).collect();
        let channel = filter.channel.map(|c| c.as_str());

        let (posted, declines, returns, chat, flags) = {
            let mut c = self.store.read_conn().await?;
            (
                q::posted_by_day(&mut c, &ranges, channel).await?,
                q::declines_by_day(&mut c, &ranges, channel).await?,
                q::returns_by_day(&mut c, &ranges, channel).await?,
                q::chat_by_day(&mut c, &ranges).await?,
                {
                    let today = self.today_for_biller();
                    let start = billpay_domain::calendar::local_instant(
                        today,
                        jiff::civil::Time::midnight(),
                        &crate::accounts::tz_named(&self.config().ivr.timezone),
                    );
                    q::account_status_counts(&mut c, &today.to_string(), start.as_microsecond())
                        .await?
                },
            )
        };
        let (risk_rows, refusals) = {
            let mut c = self.store.read_conn().await?;
            (
                q::risk_by_day(&mut c, &ranges, channel).await?,
                q::refusal_reasons(&mut c, range_from, range_to, channel).await?,
            )
        };
        let risk = series_of(
            &names,
            &["allow", "review", "block"],
            risk_rows
                .iter()
                .map(|r| (r.day.as_str(), r.reason.as_str(), r.count)),
        );
        let refusal_totals = refusal_totals(&refusals);
        let calls = {
            let mut c = self.store.relaxed_conn().await?;
            q::calls_between(&mut c, range_from, range_to, DASHBOARD_CALLS_MAX + 1).await?
        };

        // Payments: the biller's currency is the one most payments are in.
        let currency = {
            let mut by: std::collections::BTreeMap<&str, i64> = Default::default();
            for r in &posted {
                *by.entry(r.currency.as_str()).or_default() += r.count;
            }
            by.into_iter()
                .max_by_key(|(_, n)| *n)
                .and_then(|(c, _)| Currency::parse(c).ok())
                .unwrap_or(Currency::USD)
        };
        let mine: Vec<&q::PostedByDayRow> = posted
            .iter()
            .filter(|r| r.currency == currency.code())
            .collect();
        let other_currency_payments = posted
            .iter()
            .filter(|r| r.currency != currency.code())
            .map(|r| r.count)
            .sum();
        let channels: Vec<&str> = Channel::ALL.iter().map(Channel::as_str).collect();
        let by = |key: fn(&q::PostedByDayRow) -> &str, amount: bool, keys: &[&str]| {
            series_of(
                &names,
                keys,
                mine.iter().map(|r| {
                    (
                        r.day.as_str(),
                        key(r),
                        if amount { r.amount } else { r.count },
                    )
                }),
            )
        };
        let count_by_channel = by(|r| r.channel.as_str(), false, &channels);
        let amount_by_channel = by(|r| r.channel.as_str(), true, &channels);
        let count_by_method = by(|r| r.method_type.as_str(), false, &METHODS);
        let amount_by_method = by(|r| r.method_type.as_str(), true, &METHODS);
        let payments = mine.iter().map(|r| r.count).sum();
        let amount = Money::new(mine.iter().map(|r| r.amount).sum(), currency);

        let declines = series_of(
            &names,
            &[],
            declines
                .iter()
                .map(|r| (r.day.as_str(), r.reason.as_str(), r.count)),
        );
        let returns = series_of(
            &names,
            &[],
            returns
                .iter()
                .map(|r| (r.day.as_str(), r.reason.as_str(), r.count)),
        );

        let ivr = ivr_stats(&calls, &ranges);
        let chat = chat_stats(&chat, &names);
        let accounts = account_stats(&flags);

        Ok(Dashboard {
            decline_totals: reason_totals(&declines),
            return_totals: reason_totals(&returns),
            filter,
            timezone: tz_name,
            currency,
            days,
            count_by_channel,
            amount_by_channel,
            count_by_method,
            amount_by_method,
            payments,
            amount,
            other_currency_payments,
            declines,
            returns,
            ivr,
            chat,
            accounts,
            risk,
            refusal_totals,
        })
    }
}

fn account_stats(r: &q::AccountStatusRow) -> AccountStats {
    AccountStats {
        current: r.total - r.suspended - r.in_arrangement - r.past_due,
        past_due: r.past_due,
        suspended: r.suspended,
        in_arrangement: r.in_arrangement,
        total: r.total,
        autopay: r.autopay,
    }
}

fn ivr_stats(calls: &[q::CallStatRow], ranges: &[DayRange]) -> IvrStats {
    let mut s = IvrStats {
        per_day: vec![0; ranges.len()],
        truncated: calls.len() as i64 > DASHBOARD_CALLS_MAX,
        ..Default::default()
    };
    let mut secs_to_pay_total = 0i64;
    for row in calls.iter().take(DASHBOARD_CALLS_MAX as usize) {
        s.calls += 1;
        if let Some(i) = ranges
            .iter()
            .position(|r| row.created_at >= r.from && row.created_at < r.to)
        {
            s.per_day[i] += 1;
        }
        // A call's state is the call flow's own record; one that does not parse is counted as
        // a call and nothing more.
        let Ok(call) = serde_json::from_str::<billpay_ivr::Call>(&row.state) else {
            continue;
        };
        let paid = call.last_confirmation.is_some();
        let transferred = call.transfer_reason.is_some();
        if transferred {
            s.transferred += 1;
        } else if paid {
            s.contained += 1;
            secs_to_pay_total += (row.updated_at - row.created_at).max(0) / 1_000_000;
        } else if row.status != "active" && call.step != billpay_ivr::Step::Ended {
            s.abandoned += 1;
        }
    }
    if s.contained > 0 {
        s.average_secs_to_pay = Some(secs_to_pay_total / s.contained);
    }
    s
}

fn chat_stats(rows: &[q::ChatByDayRow], names: &[String]) -> ChatStats {
    let mut s = ChatStats {
        per_day: vec![0; names.len()],
        handed_over_per_day: vec![0; names.len()],
        ..Default::default()
    };
    let mut wait_total = 0i64;
    for r in rows {
        if let Some(i) = names.iter().position(|d| *d == r.day) {
            s.per_day[i] += r.conversations;
            s.handed_over_per_day[i] += r.handed_over;
        }
        s.conversations += r.conversations;
        s.handed_over += r.handed_over;
        s.answered += r.answered;
        wait_total += r.wait_micros_total;
    }
    if s.answered > 0 {
        s.average_wait_secs = Some(wait_total / s.answered / 1_000_000);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        jiff::civil::date(2026, 12, 4)
    }

    fn err(from: Option<&str>, to: Option<&str>, ch: Option<&str>) -> (String, String) {
        match DashboardFilter::parse(from, to, ch, today()) {
            Err(ServiceError::Invalid { param, message }) => (param, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_filter_defaults_to_the_last_two_weeks_and_all_channels() {
        let f = DashboardFilter::parse(None, Some(""), Some(""), today()).unwrap();
        assert_eq!(f.to, today());
        assert_eq!(f.from, jiff::civil::date(2026, 11, 21));
        assert_eq!(f.days().len(), 14);
        assert_eq!(f.channel, None);
        let f = DashboardFilter::parse(
            Some("2026-12-01"),
            Some("2026-12-01"),
            Some("phone"),
            today(),
        )
        .unwrap();
        assert_eq!(f.days(), vec![jiff::civil::date(2026, 12, 1)]);
        assert_eq!(f.channel, Some(Channel::Phone));
    }

    #[test]
    fn bad_filters_are_refused_with_the_parameter_and_what_is_accepted() {
        assert_eq!(
            err(Some("12/01/2026"), None, None),
            (
                "from".into(),
                "from must be a day as YYYY-MM-DD, like 2026-12-04".into()
            )
        );
        assert_eq!(err(None, Some("soon"), None).0, "to");
        assert_eq!(
            err(Some("2026-12-04"), Some("2026-12-01"), None),
            ("from".into(), "from must be on or before to".into())
        );
        let (p, m) = err(Some("2026-01-01"), Some("2026-12-01"), None);
        assert_eq!(p, "to");
        assert!(m.contains("at most 92 days"), "{m}");
        let (p, m) = err(None, None, Some("fax"));
        assert_eq!(p, "channel");
        assert!(
            m.contains("web, phone, chat, agent, autopay, mail, api"),
            "{m}"
        );
        // 92 days is the most.
        assert!(
            DashboardFilter::parse(Some("2026-09-03"), Some("2026-12-04"), None, today()).is_err()
        );
        assert!(
            DashboardFilter::parse(Some("2026-09-04"), Some("2026-12-04"), None, today()).is_ok()
        );
    }

    #[test]
    fn percentages_come_from_integers() {
        assert_eq!(percent(3, 7), "42.9%");
        assert_eq!(percent(0, 5), "0.0%");
        assert_eq!(percent(5, 5), "100.0%");
        assert_eq!(percent(1, 0), "–");
    }

    #[test]
    fn series_keep_known_keys_in_order_and_drop_empty_ones() {
        let days = vec!["d1".to_string(), "d2".to_string()];
        let rows = [
            ("d2", "phone", 3),
            ("d1", "web", 1),
            ("d2", "web", 2),
            ("d9", "web", 5),
        ];
        let s = series_of(
            &days,
            &["web", "phone", "chat"],
            rows.iter().map(|(d, k, v)| (*d, *k, *v)),
        );
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].name.as_str(), s[0].values.clone()),
            ("web", vec![1, 2])
        );
        assert_eq!(
            (s[1].name.as_str(), s[1].values.clone()),
            ("phone", vec![0, 3])
        );
    }
}
