use super::*;

const RATE: u64 = 1_000_000_000;

/// A report whose baseline (first announce of the window) was zeros one
/// second earlier: what a shoal agent's `started` looks like.
fn report(at: i64, up: u64, down: u64, origin: Option<u64>) -> SessionReport {
    SessionReport {
        release: 1,
        publisher: 1,
        session: [7; 20],
        client: [0; 16],
        restarted: false,
        started_unix: 0,
        baseline: Reported {
            at_unix: at - 1,
            ..Reported::default()
        },
        uploaded: up,
        downloaded: down,
        origin,
        completed: false,
        at_unix: at,
    }
}

#[test]
fn growth_is_split_by_source() {
    let (state, usage) = session_delta(None, &report(100, 10, 1000, Some(300)), RATE);
    assert_eq!(usage.peer_bytes, 700);
    assert_eq!(usage.origin_bytes, 300);
    assert_eq!(usage.uploaded_bytes, 10);
    let (_, usage) = session_delta(Some(&state), &report(160, 50, 1500, Some(300)), RATE);
    assert_eq!(
        (usage.peer_bytes, usage.origin_bytes, usage.uploaded_bytes),
        (500, 0, 40)
    );
}

#[test]
fn a_repeated_or_older_announce_adds_nothing() {
    let (state, _) = session_delta(None, &report(100, 10, 1000, None), RATE);
    let (again, usage) = session_delta(Some(&state), &report(100, 10, 1000, None), RATE);
    assert_eq!(usage, UsageDelta::default());
    let (after, usage) = session_delta(Some(&again), &report(90, 5, 400, None), RATE);
    assert_eq!(usage, UsageDelta::default());
    assert_eq!(after.downloaded, 1000, "totals never go back");
}

#[test]
fn clients_without_origin_bytes_are_unattributed() {
    let (_, usage) = session_delta(None, &report(100, 0, 4096, None), RATE);
    assert_eq!(usage.unattributed_bytes, 4096);
    assert_eq!(usage.peer_bytes + usage.origin_bytes, 0);
}

#[test]
fn origin_bytes_never_exceed_the_downloaded_growth() {
    let (_, usage) = session_delta(None, &report(100, 0, 100, Some(500)), RATE);
    assert_eq!((usage.origin_bytes, usage.peer_bytes), (100, 0));
}

#[test]
fn impossible_rates_are_flagged_not_billed_and_stored_totals_stay_physical() {
    let (state, _) = session_delta(None, &report(100, 0, 0, Some(0)), 1000);
    let (state, usage) = session_delta(Some(&state), &report(110, 0, 20_000, Some(0)), 1000);
    assert_eq!(usage.flagged_bytes, 20_000);
    assert_eq!(
        usage.peer_bytes + usage.origin_bytes + usage.uploaded_bytes,
        0
    );
    // The stored total advanced by what 10 s at 1000 B/s could carry.
    assert_eq!(state.downloaded, 10_000);
    // Honest growth from there is billed again.
    let (_, usage) = session_delta(Some(&state), &report(120, 0, 15_000, Some(0)), 1000);
    assert_eq!((usage.peer_bytes, usage.flagged_bytes), (5_000, 0));
}

/// Regression (audit finding 1): one announce of i64::MAX bytes.
#[test]
fn absurd_totals_are_flagged_and_never_store_absurd_counters() {
    let max = i64::MAX as u64;
    let (state, usage) = session_delta(None, &report(100, max, max, Some(max)), RATE);
    assert_eq!(usage.flagged_bytes, 2 * max, "up + down, not wrapped");
    assert_eq!(usage.peer_bytes + usage.uploaded_bytes, 0);
    assert_eq!(state.downloaded, RATE);
    assert!(state.origin <= state.downloaded);
    let mut sum = UsageDelta::default();
    sum.add(&usage);
    sum.add(&usage);
    assert_eq!(sum.flagged_bytes, u64::MAX);
}

/// Regression (audit finding 2): a session's first report credits nothing.
#[test]
fn a_first_report_only_sets_the_baseline() {
    let mut first = report(100, 0, 1_250_000_000, Some(0));
    first.baseline = Reported {
        downloaded: 1_250_000_000,
        at_unix: 100,
        completed: true,
        ..Reported::default()
    };
    let (state, usage) = session_delta(None, &first, RATE);
    assert_eq!(usage, UsageDelta::default(), "no bytes, no completion");
    assert_eq!(state.downloaded, 1_250_000_000);
    assert!(state.completed, "nor can that completion be credited later");
    let mut again = report(160, 0, 1_250_000_000, Some(0));
    again.completed = true;
    let (_, usage) = session_delta(Some(&state), &again, RATE);
    assert_eq!(usage, UsageDelta::default());
}

#[test]
fn a_restarted_session_counts_from_zero_and_completes_once() {
    let mut done = report(100, 0, 500, None);
    done.completed = true;
    done.baseline.at_unix = 99;
    let (state, usage) = session_delta(None, &done, RATE);
    assert_eq!(usage.completions, 1);
    let (state, usage) = session_delta(Some(&state), &done, RATE);
    assert_eq!(usage.completions, 0, "a repeated completed counts once");
    let mut fresh = report(200, 0, 200, None);
    fresh.restarted = true;
    fresh.started_unix = 200;
    let (_, usage) = session_delta(Some(&state), &fresh, RATE);
    assert_eq!(usage.unattributed_bytes, 200);
}

/// Another instance stored later totals of the session before this
/// instance wrote the window holding its `started`.
#[test]
fn a_started_older_than_the_stored_totals_does_not_reset_them() {
    let (state, usage) = session_delta(None, &report(110, 0, 3000, Some(1000)), RATE);
    assert_eq!(usage.peer_bytes + usage.origin_bytes, 3000);
    let mut late = report(105, 0, 1000, Some(500));
    late.restarted = true;
    late.started_unix = 100;
    let (state, usage) = session_delta(Some(&state), &late, RATE);
    assert_eq!(usage, UsageDelta::default());
    assert_eq!(state.downloaded, 3000);
}
