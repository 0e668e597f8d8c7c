//! Issue 13, point 3: the task centre. Tasks move with the events the pipeline records,
//! each on its own local day; a run of days resets on a gap; a task pays once per
//! period however often events are replayed; completing one is an event for the rules.

use chrono::{Duration, NaiveDate, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Mall, beijing_noon, beijing_today as today, phone, unique};

/// Noon of `day` in Beijing, or now for a day whose noon is still ahead.
fn noon(day: NaiveDate) -> String {
    beijing_noon(day).min(Utc::now()).to_rfc3339()
}

impl Mall {
    async fn task(&self, body: Value) -> (StatusCode, Value) {
        self.app
            .call(Method::POST, &format!("/v1/tenants/{}/staff/tasks", self.t.slug), Some(&self.owner), Some(body))
            .await
    }

    async fn mine(&self, tokens: &Value, task: i64) -> Value {
        let (s, r) = self
            .app
            .call(Method::GET, &format!("/v1/tenants/{}/me/tasks", self.t.slug), tokens["access_token"].as_str(), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        r.as_array().unwrap().iter().find(|x| x["id"] == task).cloned().unwrap_or(Value::Null)
    }

    /// (rewards, points) the member got from task `task`.
    async fn rewards(&self, member: i64, task: i64) -> (i64, i64) {
        let mut tx = self.app.db.tenant_tx(&self.t.cluster, &self.t.schema_name).await.unwrap();
        let r: (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), sum(amount)::bigint FROM entries WHERE member_id = $1 AND actor = $2 AND amount > 0",
        )
        .bind(member)
        .bind(format!("task:{task}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        (r.0, r.1.unwrap_or(0))
    }
}

fn check_ins(member: i64, days: &[NaiveDate], tag: &str) -> Value {
    Value::Array(
        days.iter()
            .map(|d| json!({"id": format!("{tag}-{d}"), "type": "checked_in", "member_id": member, "occurred_at": noon(*d)}))
            .collect(),
    )
}

#[tokio::test]
async fn seven_days_in_a_row_completes_once_on_day_seven_and_pays_once_under_replays() {
    let m = Mall::new().await;
    let (member, tokens) = m.app.member(&m.t, &phone()).await;
    let id = member["id"].as_i64().unwrap();
    let (s, task) = m
        .task(json!({"name": "连续签到 7 天", "event_type": "checked_in", "target": 7, "consecutive_days": true,
                     "period": "once", "reward_currency": "points", "reward_amount": 500}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{task}");
    let task_id = task["id"].as_i64().unwrap();
    let d = today();
    let day = |n: i64| d - Duration::days(n);

    // Two days, a gap, then six days up to yesterday: the run is six.
    let first = [day(9), day(8)];
    let run: Vec<NaiveDate> = (1..=6).rev().map(day).collect();
    m.events(check_ins(id, &first, "a")).await;
    m.events(check_ins(id, &run, "a")).await;
    let mine = m.mine(&tokens, task_id).await;
    assert_eq!((mine["progress"].as_i64(), mine["completed"].as_bool()), (Some(6), Some(false)), "{mine}");
    assert_eq!(m.rewards(id, task_id).await, (0, 0));

    // Day seven: done, paid once.
    m.events(check_ins(id, &[d], "a")).await;
    let mine = m.mine(&tokens, task_id).await;
    assert_eq!((mine["progress"].as_i64(), mine["completed"].as_bool()), (Some(7), Some(true)), "{mine}");
    assert_eq!(m.rewards(id, task_id).await, (1, 500));
    // The member's history names the task in the mall's language.
    let (_, history) = m
        .app
        .call(
            Method::GET,
            &format!("/v1/tenants/{}/me/points/entries", m.t.slug),
            tokens["access_token"].as_str(),
            None,
        )
        .await;
    assert!(history.to_string().contains("任务奖励：连续签到 7 天"), "{history}");

    // Every event sent again (replays), and a new one today: nothing more.
    let mut all: Vec<NaiveDate> = first.to_vec();
    all.extend(&run);
    all.push(d);
    let again = m.events(check_ins(id, &all, "a")).await;
    assert!(again.as_array().unwrap().iter().all(|r| r["replayed"] == true), "{again}");
    m.events(check_ins(id, &[d], "b")).await;
    assert_eq!(m.rewards(id, task_id).await, (1, 500));

    // Completing it was an event for the rules; the staff see one completion.
    let mut tx = m.app.db.tenant_tx(&m.t.cluster, &m.t.schema_name).await.unwrap();
    let completed: Vec<Value> =
        sqlx::query_scalar("SELECT data FROM events WHERE type = 'task_completed' AND member_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    drop(tx);
    assert_eq!(completed, [json!({"task_id": task_id, "name": "连续签到 7 天", "period": "once"})]);
    let (_, staff_view) =
        m.app.call(Method::GET, &format!("/v1/tenants/{}/staff/tasks/{task_id}", m.t.slug), Some(&m.owner), None).await;
    assert_eq!(staff_view["completions"], 1, "{staff_view}");
    m.app.assert_ledger_sound(&m.t).await;
}

#[tokio::test]
async fn a_daily_count_pays_each_local_day_once_within_its_window() {
    let m = Mall::new().await;
    let (member, tokens) = m.app.member(&m.t, &phone()).await;
    let id = member["id"].as_i64().unwrap();
    let (_, task) = m
        .task(json!({"name": "每日分享 3 次", "event_type": "shared", "target": 3, "period": "daily",
                     "reward_currency": "exp", "reward_amount": 10}))
        .await;
    let task_id = task["id"].as_i64().unwrap();
    let (_, closed) = m
        .task(
            json!({"name": "已结束", "event_type": "shared", "target": 1, "period": "once", "reward_currency": "points",
                     "reward_amount": 1, "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-02-01T00:00:00Z"}),
        )
        .await;
    let shared = |n: usize, day: NaiveDate| -> Value {
        Value::Array(
            (0..n)
                .map(|_| json!({"id": unique("s"), "type": "shared", "member_id": id, "occurred_at": noon(day)}))
                .collect(),
        )
    };
    // Three yesterday (sent today, back-dated) and two today: yesterday is done.
    let yesterday = today() - Duration::days(1);
    m.events(shared(3, yesterday)).await;
    m.events(shared(2, today())).await;
    assert_eq!(m.rewards(id, task_id).await, (1, 10));
    let mine = m.mine(&tokens, task_id).await;
    assert_eq!((mine["progress"].as_i64(), mine["completed"].as_bool()), (Some(2), Some(false)), "{mine}");
    // The third today completes today; a fourth does nothing.
    m.events(shared(1, today())).await;
    m.events(shared(1, today())).await;
    assert_eq!(m.rewards(id, task_id).await, (2, 20));
    assert_eq!(m.rewards(id, closed["id"].as_i64().unwrap()).await, (0, 0), "outside its window");
    assert!(m.mine(&tokens, closed["id"].as_i64().unwrap()).await.is_null(), "members do not see a closed task");
    m.app.assert_ledger_sound(&m.t).await;
}

#[tokio::test]
async fn completing_the_profile_is_a_task_and_bad_definitions_are_named() {
    let m = Mall::new().await;
    let (member, tokens) = m.app.member(&m.t, &phone()).await;
    let id = member["id"].as_i64().unwrap();
    let (_, task) = m
        .task(json!({"name": "完善资料", "event_type": "profile_completed", "target": 1, "period": "once",
                     "reward_currency": "points", "reward_amount": 20}))
        .await;
    let task_id = task["id"].as_i64().unwrap();
    let patch = |body: Value| {
        let path = format!("/v1/tenants/{}/me", m.t.slug);
        let token = tokens["access_token"].as_str().unwrap().to_string();
        let app = &m.app;
        async move { app.call(Method::PATCH, &path, Some(&token), Some(body)).await }
    };
    let (s, _) = patch(json!({"nickname": "茶客"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = patch(json!({"avatar_url": "https://img.example.com/a.png"})).await;
    assert_eq!(s, StatusCode::OK);
    let mut done = false;
    for _ in 0..50 {
        if m.mine(&tokens, task_id).await["completed"] == true {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "the profile task completes after the profile does");
    let (s, _) = patch(json!({"nickname": "茶客二号"})).await;
    assert_eq!(s, StatusCode::OK);
    m.app.jobs(&m.t, Utc::now()).await;
    assert_eq!(m.rewards(id, task_id).await, (1, 20));

    let base = json!({"name": "x", "event_type": "checked_in", "target": 3, "period": "daily",
                      "reward_currency": "points", "reward_amount": 5});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let mut ends_first = with("ends_at", json!("2019-01-01T00:00:00Z"));
    ends_first["starts_at"] = json!("2020-01-01T00:00:00Z");
    for (body, field) in [
        (with("consecutive_days", json!(true)), "consecutive_days"),
        (with("reward_currency", json!("nope")), "reward_currency"),
        (with("event_type", json!("Bad Type")), "event_type"),
        (ends_first, "ends_at"),
    ] {
        let (s, r) = m.task(body).await;
        assert_eq!(
            (s, r["error"]["details"]["fields"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{r}"
        );
    }
    let (_, auditor) = m.app.staff(&m.t, "auditor").await;
    let (s, _) =
        m.app.call(Method::POST, &format!("/v1/tenants/{}/staff/tasks", m.t.slug), Some(&auditor), Some(base)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
