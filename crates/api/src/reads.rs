//! The reads behind every MCP tool and REST endpoint: store reads (the dashboard's own) turned
//! into the answers in `model`, with ranges resolved, statistics computed and input checked.

use chrono::{Duration, NaiveDate, Utc};

use crate::model::*;
use crate::Error;

/// How far back `all` reaches before the first day when the file is empty.
const DEFAULT_DAYS: i64 = 30;

#[derive(Clone)]
pub struct Reader {
    store: store::Store,
}

impl Reader {
    pub fn new(store: store::Store) -> Self {
        Reader { store }
    }

    pub fn store(&self) -> &store::Store {
        &self.store
    }

    /// The newest day in the data, or today's UTC date when there is none.
    async fn anchor(&self) -> Result<NaiveDate, Error> {
        let holdings_last: Option<NaiveDate> = self.store.latest_day().await?;
        Ok(holdings_last.unwrap_or_else(|| Utc::now().date_naive()))
    }

    /// Resolves range/from/to into inclusive days.
    pub async fn window(
        &self,
        range: Option<RangeName>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        default: RangeName,
    ) -> Result<(NaiveDate, NaiveDate), Error> {
        if range.is_some() && (from.is_some() || to.is_some()) {
            return Err(Error::BadRequest(
                "give either range or from/to, not both".into(),
            ));
        }
        let (from, to) = match (from, to) {
            (None, None) => {
                let to = self.anchor().await?;
                let from = match range.unwrap_or(default) {
                    RangeName::Days7 => to - Duration::days(6),
                    RangeName::Days30 => to - Duration::days(29),
                    RangeName::Days90 => to - Duration::days(89),
                    RangeName::Year => to - Duration::days(364),
                    RangeName::All => self
                        .store
                        .first_day()
                        .await?
                        .unwrap_or(to - Duration::days(DEFAULT_DAYS - 1)),
                };
                (from, to)
            }
            (Some(from), None) => (from, self.anchor().await?.max(from)),
            (None, Some(to)) => (to - Duration::days(DEFAULT_DAYS - 1), to),
            (Some(from), Some(to)) => (from, to),
        };
        if from > to {
            return Err(Error::BadRequest(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        Ok((from, to))
    }

    pub async fn today(&self) -> Result<Today, Error> {
        let t = self.store.today().await?;
        let reading = |m: store::MetricNow, metric: store::Metric| Reading {
            value: m.value,
            unit: metric.unit().to_string(),
            pending: m.pending,
            unscorable: m.unscorable,
            baseline_30d: m.baseline,
        };
        Ok(Today {
            day: t.day,
            recovery_band: t.recovery.value.map(Band::of),
            recovery: reading(t.recovery, store::Metric::Recovery),
            hrv: reading(t.hrv, store::Metric::Hrv),
            resting_heart_rate: reading(t.resting_hr, store::Metric::RestingHeartRate),
            sleep: TodaySleep {
                pending: t.sleep.pending,
                unscorable: t.sleep.unscorable,
                performance_pct: t.sleep.performance,
                hours_asleep: t.sleep.hours_asleep,
                hours_needed: t.sleep.hours_needed,
                light_hours: t.sleep.light_hours,
                deep_hours: t.sleep.deep_hours,
                rem_hours: t.sleep.rem_hours,
                awake_hours: t.sleep.awake_hours,
            },
            day_strain: reading(t.day_strain, store::Metric::DayStrain),
            newest_record: self.store.newest_record_time().await?,
        })
    }

    pub async fn series(&self, input: &SeriesInput) -> Result<Series, Error> {
        if let Some(days) = input.rolling_days {
            if !(2..=365).contains(&days) {
                return Err(Error::BadRequest(format!(
                    "rolling_days must be between 2 and 365, not {days}"
                )));
            }
        }
        let (from, to) = self
            .window(input.range, input.from, input.to, RangeName::Days30)
            .await?;
        // The rolling average needs the days before `from` too.
        let read_from = from - Duration::days(input.rolling_days.unwrap_or(1) as i64 - 1);
        let all = self
            .store
            .daily_series(input.metric.store(), read_from, to)
            .await?;
        let mut points = Vec::new();
        for (i, v) in all.iter().enumerate() {
            if v.day < from {
                continue;
            }
            let rolling = input.rolling_days.map(|days| {
                let start = v.day - Duration::days(days as i64 - 1);
                let window: Vec<f64> = all[..=i]
                    .iter()
                    .rev()
                    .take_while(|w| w.day >= start)
                    .map(|w| w.value)
                    .collect();
                window.iter().sum::<f64>() / window.len() as f64
            });
            points.push(Point {
                day: v.day,
                value: v.value,
                rolling,
            });
        }
        Ok(Series {
            metric: input.metric,
            unit: input.metric.store().unit().to_string(),
            from,
            to,
            rolling_days: input.rolling_days,
            days_in_range: ((to - from).num_days() + 1) as u32,
            points,
        })
    }

    async fn values(
        &self,
        metric: MetricName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayValue>, Error> {
        Ok(day_values(
            &self.store.days(from, to, &[metric.store()]).await?,
            metric,
        ))
    }

    /// The chosen metrics (all when None) per day: one read whatever their number.
    async fn days(
        &self,
        metrics: &[MetricName],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<store::DayMetrics>, Error> {
        let wanted: Vec<store::Metric> = metrics.iter().map(|m| m.store()).collect();
        Ok(self.store.days(from, to, &wanted).await?)
    }

    pub async fn summary(&self, input: &SummaryInput) -> Result<PeriodSummary, Error> {
        let (from, to) = self
            .window(input.range, input.from, input.to, RangeName::Days7)
            .await?;
        let length = (to - from).num_days() + 1;
        let (previous_from, previous_to) =
            (from - Duration::days(length), from - Duration::days(1));
        let chosen = chosen(input.metric);
        // One read covering both periods (the two are adjacent) and every metric, split by day.
        let days = self.days(&chosen, previous_from, to).await?;
        let mut metrics = Vec::new();
        for metric in chosen {
            let both = day_values(&days, metric);
            let (before, now): (Vec<DayValue>, Vec<DayValue>) =
                both.into_iter().partition(|v| v.day < from);
            let previous = stats(&before);
            let stats = stats(&now);
            let (best, worst) = match metric.better() {
                Better::Higher => (stats.max.clone(), stats.min.clone()),
                Better::Lower => (stats.min.clone(), stats.max.clone()),
                Better::Neither => (None, None),
            };
            metrics.push(MetricSummary {
                metric,
                unit: metric.store().unit().to_string(),
                better: metric.better(),
                change: match (stats.mean, previous.mean) {
                    (Some(a), Some(b)) => Some(a - b),
                    _ => None,
                },
                stats,
                best,
                worst,
                previous,
            });
        }
        Ok(PeriodSummary {
            from,
            to,
            previous_from,
            previous_to,
            metrics,
        })
    }

    pub async fn compare(&self, input: &CompareInput) -> Result<Comparison, Error> {
        for (f, t) in [(input.a_from, input.a_to), (input.b_from, input.b_to)] {
            if f > t {
                return Err(Error::BadRequest(format!(
                    "a period starts ({f}) after it ends ({t})"
                )));
            }
        }
        let mut metrics = Vec::new();
        // One read of every metric spanning both periods (they may overlap), split by day.
        let (first, last) = (input.a_from.min(input.b_from), input.a_to.max(input.b_to));
        let within = |values: &[DayValue], from: NaiveDate, to: NaiveDate| -> Vec<DayValue> {
            values
                .iter()
                .filter(|v| v.day >= from && v.day <= to)
                .cloned()
                .collect()
        };
        let chosen = chosen(input.metric);
        let days = self.days(&chosen, first, last).await?;
        for metric in chosen {
            let all = day_values(&days, metric);
            let a = stats(&within(&all, input.a_from, input.a_to));
            let b = stats(&within(&all, input.b_from, input.b_to));
            let difference = match (a.mean, b.mean) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            };
            let percent = match (difference, a.mean) {
                (Some(d), Some(m)) if m != 0.0 => Some(d / m * 100.0),
                _ => None,
            };
            metrics.push(MetricComparison {
                metric,
                unit: metric.store().unit().to_string(),
                a,
                b,
                difference,
                percent,
            });
        }
        Ok(Comparison {
            a_from: input.a_from,
            a_to: input.a_to,
            b_from: input.b_from,
            b_to: input.b_to,
            metrics,
        })
    }

    pub async fn correlate(&self, input: &CorrelateInput) -> Result<Correlation, Error> {
        let lag = input.lag_days.unwrap_or(0);
        if lag.abs() > 30 {
            return Err(Error::BadRequest(format!(
                "lag_days must be between -30 and 30, not {lag}"
            )));
        }
        let (from, to) = self
            .window(input.range, input.from, input.to, RangeName::Days90)
            .await?;
        let xs = self.values(input.x, from, to).await?;
        let ys = self
            .values(
                input.y,
                from + Duration::days(lag as i64),
                to + Duration::days(lag as i64),
            )
            .await?;
        let ys: std::collections::HashMap<NaiveDate, f64> =
            ys.into_iter().map(|v| (v.day, v.value)).collect();
        let pairs: Vec<(f64, f64)> = xs
            .iter()
            .filter_map(|x| Some((x.value, *ys.get(&(x.day + Duration::days(lag as i64)))?)))
            .collect();
        let r = pearson(&pairs);
        Ok(Correlation {
            x: input.x,
            y: input.y,
            lag_days: lag,
            from,
            to,
            n: pairs.len() as u32,
            r,
            strength: r.map(|r| {
                match r.abs() {
                    a if a < 0.3 => "weak",
                    a if a < 0.5 => "moderate",
                    _ => "strong",
                }
                .to_string()
            }),
        })
    }

    pub async fn workouts(&self, input: &WorkoutsInput) -> Result<Workouts, Error> {
        let limit = input.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadRequest(format!(
                "limit must be between 1 and 1000, not {limit}"
            )));
        }
        if let (Some(from), Some(to)) = (input.from, input.to) {
            if from > to {
                return Err(Error::BadRequest(format!(
                    "from ({from}) is after to ({to})"
                )));
            }
        }
        let found = self
            .store
            .workouts_matching(&store::WorkoutFilter {
                from: input.from,
                to: input.to,
                sport: input.sport.clone(),
                min_strain: input.min_strain,
                max_strain: input.max_strain,
                limit,
            })
            .await?;
        let workouts: Vec<Workout> = found
            .into_iter()
            .map(|w| Workout {
                sport: store::normalise_sport(&w.sport),
                id: w.id,
                start: w.start,
                timezone_offset: w.timezone_offset,
                duration_min: w.duration_min,
                strain: w.strain,
                average_hr: w.average_hr,
                max_hr: w.max_hr,
                distance_m: w.distance_m,
                pending: w.pending,
            })
            .collect();
        Ok(Workouts {
            count: workouts.len() as u32,
            workouts,
        })
    }

    pub async fn sleep(&self, input: &SleepInput) -> Result<Night, Error> {
        let day = match input.day {
            Some(day) => Some(day),
            None => self.store.latest_sleep_day().await?,
        };
        let Some(day) = day else {
            return Ok(Night {
                day: None,
                main: None,
                naps: vec![],
            });
        };
        let sleeps = self.store.sleeps_of_day(day).await?;
        let (naps, main): (Vec<_>, Vec<_>) = sleeps.into_iter().map(sleep).partition(|s| s.nap);
        Ok(Night {
            day: Some(day),
            main: main.into_iter().next(),
            naps,
        })
    }

    pub async fn status(&self) -> Result<DataStatus, Error> {
        let h = self.store.holdings().await?;
        let mut gaps = Vec::new();
        let mut missing = 0u32;
        for pair in h.cycle_days.windows(2) {
            let between = (pair[1] - pair[0]).num_days() - 1;
            if between > 0 {
                missing += between as u32;
                gaps.push(Gap {
                    from: pair[0] + Duration::days(1),
                    to: pair[1] - Duration::days(1),
                    days: between as u32,
                });
            }
        }
        gaps.sort_by(|a, b| b.days.cmp(&a.days).then(a.from.cmp(&b.from)));
        gaps.truncate(20);
        let counts = |s: store::ScoreStates| StateCounts {
            scored: s.scored,
            pending: s.pending,
            unscorable: s.unscorable,
        };
        let connection_state = match self.store.get_meta("connection_state").await? {
            Some(json) => serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .and_then(|v| v.get("state")?.as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".into()),
            None => "not_connected".into(),
        };
        let last_sync = self.store.last_sync_run(false).await?.map(|run| LastSync {
            kind: run.kind,
            started_at: run.started_at,
            finished_at: run.finished_at,
            status: serde_json::to_value(run.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        });
        Ok(DataStatus {
            cycles: counts(h.cycles),
            sleeps: counts(h.sleeps),
            recoveries: counts(h.recoveries),
            workouts: counts(h.workouts),
            naps: h.naps,
            first_day: h.first_day,
            last_day: h.last_day,
            hours_since_newest_record: h
                .newest_record
                .map(|t| ((Utc::now() - t).num_minutes() as f64 / 60.0 * 10.0).round() / 10.0),
            newest_record: h.newest_record,
            newest_update: h.newest_update,
            gaps,
            days_without_cycle: missing,
            import_complete: self.store.get_meta("import_complete").await?.is_some(),
            connection_state,
            live_updates: self.store.get_meta("relay_cursor").await?.is_some(),
            last_sync,
        })
    }

    pub async fn profile(&self) -> Result<ProfileAnswer, Error> {
        let p = self.store.profile().await?;
        Ok(ProfileAnswer {
            user_id: p.as_ref().map(|p| p.user_id),
            first_name: p.as_ref().map(|p| p.first_name.clone()),
            last_name: p.as_ref().map(|p| p.last_name.clone()),
        })
    }
}

/// One metric's values from a day read, in the API's types.
fn day_values(days: &[store::DayMetrics], metric: MetricName) -> Vec<DayValue> {
    store::values_of(days, metric.store())
        .into_iter()
        .map(|v| DayValue {
            day: v.day,
            value: v.value,
        })
        .collect()
}

fn chosen(metric: Option<MetricName>) -> Vec<MetricName> {
    match metric {
        Some(m) => vec![m],
        None => MetricName::ALL.to_vec(),
    }
}

fn sleep(s: store::SleepRecord) -> Sleep {
    Sleep {
        id: s.id,
        day: s.day,
        start: s.start,
        end: s.end,
        timezone_offset: s.timezone_offset,
        nap: s.nap,
        score_state: s.score_state,
        performance_pct: s.performance,
        consistency_pct: s.consistency,
        efficiency_pct: s.efficiency,
        respiratory_rate: s.respiratory_rate,
        in_bed_hours: s.in_bed_hours,
        awake_hours: s.awake_hours,
        light_hours: s.light_hours,
        deep_hours: s.deep_hours,
        rem_hours: s.rem_hours,
        no_data_hours: s.no_data_hours,
        sleep_cycles: s.sleep_cycles,
        disturbances: s.disturbances,
        need_hours: s.need_hours,
    }
}

/// n, mean, min, max (the earliest day on ties) and the least-squares slope per week.
pub fn stats(values: &[DayValue]) -> Stats {
    if values.is_empty() {
        return Stats {
            n: 0,
            mean: None,
            min: None,
            max: None,
            trend_per_week: None,
        };
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|v| v.value).sum::<f64>() / n;
    let mut min = &values[0];
    let mut max = &values[0];
    for v in values {
        if v.value < min.value {
            min = v;
        }
        if v.value > max.value {
            max = v;
        }
    }
    let trend_per_week = if values.len() >= 3 {
        let first = values[0].day;
        let pairs: Vec<(f64, f64)> = values
            .iter()
            .map(|v| ((v.day - first).num_days() as f64, v.value))
            .collect();
        let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
        let sxx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - mean)).sum();
        (sxx > 0.0).then(|| sxy / sxx * 7.0)
    } else {
        None
    };
    Stats {
        n: values.len() as u32,
        mean: Some(mean),
        min: Some(min.clone()),
        max: Some(max.clone()),
        trend_per_week,
    }
}

/// Pearson's r of the pairs; None with fewer than 3 or without variation on a side.
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pairs.iter().map(|p| (p.1 - my).powi(2)).sum();
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dv(day: u32, value: f64) -> DayValue {
        DayValue {
            day: NaiveDate::from_ymd_opt(2025, 1, day).unwrap(),
            value,
        }
    }

    #[test]
    fn a_steady_rise_of_one_a_day_is_seven_a_week() {
        let s = stats(&[dv(1, 10.0), dv(2, 11.0), dv(4, 13.0)]);
        assert_eq!(s.n, 3);
        assert!((s.trend_per_week.unwrap() - 7.0).abs() < 1e-9);
        assert_eq!(s.min.unwrap().value, 10.0);
        assert_eq!(s.max.unwrap().day, dv(4, 0.0).day);
    }

    #[test]
    fn perfect_and_absent_correlations() {
        assert!((pearson(&[(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&[(1.0, 6.0), (2.0, 4.0), (3.0, 2.0)]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]), None);
        assert_eq!(pearson(&[(1.0, 1.0), (2.0, 2.0)]), None);
    }
}
