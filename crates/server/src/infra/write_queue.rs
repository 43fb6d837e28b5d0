//! Group commit for the hot write path: [`WriteQueue`].
//!
//! SQLite admits one writer. With one statement per transaction, the payment path held the
//! single writer connection across every hand-off between tasks and sqlx's connection
//! thread, and paid a commit (a WAL append of every page touched) per statement; the writer
//! was idle most of the time yet every authorization queued behind it. On SQLite a
//! `WriteQueue` runs write jobs from a thread of its own: the jobs queued when a batch
//! starts, and those arriving while it runs (up to [`MAX_BATCH`]), run back to back inside
//! one `BEGIN IMMEDIATE … COMMIT`. Each caller gets its result only after that commit, so
//! what it wrote is visible to every reader when it goes on. On PostgreSQL, where writers do
//! not exclude each other, a job runs at once on a pooled connection in autocommit.
//!
//! Contract of a job: it succeeds, or it fails leaving nothing of itself in the batch. A job
//! of one statement has that from the database's statement-level atomicity (a constraint
//! violation undoes only its statement); a job of several writes opens a transaction with
//! `conn.begin()` (a savepoint inside the batch). Any other error may have undone the whole
//! batch in SQLite, so the batch is rolled back, its jobs run so far fail, and those not yet
//! run go on in the next batch.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

/// Most jobs one commit covers; bounds how long the first job of a batch waits.
pub const MAX_BATCH: usize = 64;

/// What a job returns: its result, borrowed from the connection it ran on.
pub type JobFuture<'c, R> = BoxFuture<'c, Result<R, sqlx::Error>>;

/// Runs write jobs: batched under one commit on SQLite, directly on PostgreSQL.
#[derive(Debug, Clone)]
pub struct WriteQueue {
    route: Route,
}

#[derive(Debug, Clone)]
enum Route {
    Direct(AnyPool),
    Batched(mpsc::UnboundedSender<Box<dyn Job>>),
}

impl WriteQueue {
    /// Jobs run at once on a connection of `pool` (PostgreSQL).
    pub fn direct(pool: AnyPool) -> Self {
        Self {
            route: Route::Direct(pool),
        }
    }

    /// Jobs run in batches on the connection of `pool` (SQLite's one-connection writer
    /// pool), from a thread that ends when the last clone of the queue is dropped. Other
    /// writers using `pool` directly take turns with the batches.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn batched(pool: AnyPool) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || runtime.block_on(serve(pool, receiver)))?;
        Ok(Self {
            route: Route::Batched(sender),
        })
    }

    /// Runs `work` and returns its result once it is committed.
    ///
    /// # Errors
    /// The job's own error, or the error that rolled its batch back.
    pub async fn run<R, F>(&self, work: F) -> Result<R, sqlx::Error>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, R> + Send + 'static,
    {
        match &self.route {
            Route::Direct(pool) => {
                let mut conn = pool.acquire().await?;
                work(&mut conn).await
            }
            Route::Batched(sender) => {
                let (reply, answer) = oneshot::channel();
                let job = Pending {
                    work: Some(work),
                    result: None,
                    reply,
                };
                sender
                    .send(Box::new(job))
                    .map_err(|_| stopped("the write queue has stopped"))?;
                answer
                    .await
                    .map_err(|_| stopped("the write queue dropped a job"))?
            }
        }
    }
}

fn stopped(message: &'static str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(message))
}

/// How a job left the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Succeeded, or failed on a constraint with its statement undone: the batch goes on.
    Kept,
    /// Failed otherwise: the batch may be undone and must be rolled back.
    Broken,
}

trait Job: Send + std::fmt::Debug {
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, Step>;
    /// Replies: the job's own result once `batch` committed, else the batch's error.
    fn finish(self: Box<Self>, batch: Result<(), &str>);
}

struct Pending<R, F> {
    work: Option<F>,
    result: Option<Result<R, sqlx::Error>>,
    reply: oneshot::Sender<Result<R, sqlx::Error>>,
}

impl<R, F> std::fmt::Debug for Pending<R, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("ran", &self.work.is_none())
            .finish_non_exhaustive()
    }
}

impl<R, F> Job for Pending<R, F>
where
    R: Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> JobFuture<'c, R> + Send + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, Step> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return Step::Kept;
            };
            // A panicking job must not take the writer thread (and every later write) down.
            let result = AssertUnwindSafe(work(conn))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(stopped("a write job panicked")));
            let step = match &result {
                Ok(_) => Step::Kept,
                Err(sqlx::Error::Database(error)) if constraint_violation(&error.kind()) => {
                    Step::Kept
                }
                Err(_) => Step::Broken,
            };
            self.result = Some(result);
            step
        })
    }

    fn finish(self: Box<Self>, batch: Result<(), &str>) {
        let answer = match (self.result, batch) {
            // Its own error, whatever became of the batch.
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(why)) => Err(sqlx::Error::Io(std::io::Error::other(format!(
                "write batch rolled back: {why}"
            )))),
            (None, Ok(())) => Err(stopped("a write job did not run")),
        };
        // The caller may have gone (request cancelled): its write stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// Errors SQLite answers by undoing the failing statement only.
fn constraint_violation(kind: &sqlx::error::ErrorKind) -> bool {
    use sqlx::error::ErrorKind::{
        CheckViolation, ForeignKeyViolation, NotNullViolation, UniqueViolation,
    };
    matches!(
        kind,
        UniqueViolation | ForeignKeyViolation | NotNullViolation | CheckViolation
    )
}

async fn serve(pool: AnyPool, mut queue: mpsc::UnboundedReceiver<Box<dyn Job>>) {
    let mut waiting = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        run_batch(&pool, &mut waiting, &mut queue).await;
    }
}

/// Runs one batch from `waiting` (then from `queue`), leaving in `waiting` what a broken
/// batch did not reach.
async fn run_batch(
    pool: &AnyPool,
    waiting: &mut VecDeque<Box<dyn Job>>,
    queue: &mut mpsc::UnboundedReceiver<Box<dyn Job>>,
) {
    let fail_all = |waiting: &mut VecDeque<Box<dyn Job>>, why: &str| {
        for job in waiting.drain(..) {
            job.finish(Err(why));
        }
    };
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => return fail_all(waiting, &error.to_string()),
    };
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(error) => return fail_all(waiting, &error.to_string()),
    };
    let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(waiting.len());
    while ran.len() < MAX_BATCH {
        let Some(mut job) = waiting.pop_front().or_else(|| queue.try_recv().ok()) else {
            break;
        };
        let step = job.run(&mut tx).await;
        ran.push(job);
        if step == Step::Broken {
            let why = "another statement of the batch failed";
            if let Err(error) = tx.rollback().await {
                tracing::error!(error = %error, "write batch rollback failed");
            }
            for job in ran {
                job.finish(Err(why));
            }
            return;
        }
    }
    match tx.commit().await {
        Ok(()) => {
            metrics::histogram!("db_write_batch_jobs").record(ran.len() as f64);
            for job in ran {
                job.finish(Ok(()));
            }
        }
        Err(error) => {
            let why = error.to_string();
            for job in ran {
                job.finish(Err(&why));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::future::join_all;
    use sqlx::any::{AnyPoolOptions, install_default_drivers};
    use sqlx::{Executor, Row};
    use tokio::sync::Notify;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        queue: WriteQueue,
        reader: AnyPool,
    }

    async fn fixture() -> Fixture {
        install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        writer
            .execute("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .await
            .unwrap();
        let reader = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            queue: WriteQueue::batched(writer).unwrap(),
            reader,
        }
    }

    fn insert(
        queue: &WriteQueue,
        id: i64,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + use<> {
        let queue = queue.clone();
        async move {
            queue
                .run(move |conn| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (id, v) VALUES ($1, 'x')")
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .map(|done| done.rows_affected())
                    })
                })
                .await
        }
    }

    async fn ids(reader: &AnyPool) -> Vec<i64> {
        sqlx::query("SELECT id FROM t ORDER BY id")
            .fetch_all(reader)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<i64, _>("id"))
            .collect()
    }

    /// Holds the writer thread inside a job until released, so the jobs queued meanwhile
    /// are known to share its batch.
    fn hold(
        queue: &WriteQueue,
        gate: Arc<Notify>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + use<> {
        let queue = queue.clone();
        async move {
            queue
                .run(move |_conn| {
                    Box::pin(async move {
                        gate.notified().await;
                        Ok(())
                    })
                })
                .await
        }
    }

    #[tokio::test]
    async fn every_caller_sees_its_write_committed() {
        let f = fixture().await;
        let results = join_all((1..=40).map(|id| insert(&f.queue, id))).await;
        assert!(results.iter().all(|r| matches!(r, Ok(1))), "{results:?}");
        // Another connection sees all of them as soon as the callers have their answers.
        assert_eq!(ids(&f.reader).await, (1..=40).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_constraint_violation_fails_only_its_job() {
        let f = fixture().await;
        let gate = Arc::new(Notify::new());
        let held = tokio::spawn(hold(&f.queue, gate.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let batch = tokio::spawn({
            let queue = f.queue.clone();
            async move { join_all([insert(&queue, 1), insert(&queue, 1), insert(&queue, 2)]).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        gate.notify_one();
        held.await.unwrap().unwrap();
        let results = batch.await.unwrap();
        assert!(matches!(results[0], Ok(1)), "{results:?}");
        assert!(
            matches!(&results[1], Err(sqlx::Error::Database(e)) if e.is_unique_violation()),
            "{results:?}"
        );
        assert!(matches!(results[2], Ok(1)), "{results:?}");
        assert_eq!(ids(&f.reader).await, [1, 2]);
    }

    #[tokio::test]
    async fn another_error_rolls_the_batch_back_and_later_jobs_go_on() {
        let f = fixture().await;
        let gate = Arc::new(Notify::new());
        let held = tokio::spawn(hold(&f.queue, gate.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let broken = {
            let queue = f.queue.clone();
            async move {
                queue
                    .run(|conn| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO missing_table (id) VALUES (1)")
                                .execute(&mut *conn)
                                .await
                                .map(|_| ())
                        })
                    })
                    .await
            }
        };
        let batch = tokio::spawn({
            let queue = f.queue.clone();
            async move {
                let (before, broken, after) =
                    tokio::join!(insert(&queue, 1), broken, insert(&queue, 2));
                (before, broken, after)
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        gate.notify_one();
        let (before, broken, after) = batch.await.unwrap();
        // The job that ran before the failure in the same batch is undone and told so.
        let held = held.await.unwrap();
        assert!(
            matches!(&held, Err(sqlx::Error::Io(e)) if e.to_string().contains("rolled back")),
            "{held:?}"
        );
        assert!(
            matches!(&before, Err(sqlx::Error::Io(e)) if e.to_string().contains("rolled back")),
            "{before:?}"
        );
        // The failing job gets its own error; the one after it ran in the next batch.
        assert!(
            matches!(broken, Err(sqlx::Error::Database(_))),
            "{broken:?}"
        );
        assert!(matches!(after, Ok(1)), "{after:?}");
        assert_eq!(ids(&f.reader).await, [2]);
    }

    #[tokio::test]
    async fn a_job_of_several_writes_is_undone_whole_by_its_savepoint() {
        let f = fixture().await;
        let outcome = f
            .queue
            .run(|conn| {
                Box::pin(async move {
                    let mut tx = conn.begin().await?;
                    sqlx::query("INSERT INTO t (id, v) VALUES (10, 'a')")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("INSERT INTO t (id, v) VALUES (10, 'b')")
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                })
            })
            .await;
        assert!(
            matches!(&outcome, Err(sqlx::Error::Database(e)) if e.is_unique_violation()),
            "{outcome:?}"
        );
        assert!(matches!(insert(&f.queue, 11).await, Ok(1)));
        assert_eq!(ids(&f.reader).await, [11]);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let f = fixture().await;
        let panicked = f
            .queue
            .run(|_conn| -> JobFuture<'_, ()> { Box::pin(async { panic!("job bug") }) })
            .await;
        assert!(
            matches!(&panicked, Err(sqlx::Error::Io(e)) if e.to_string().contains("panicked")),
            "{panicked:?}"
        );
        assert!(matches!(insert(&f.queue, 1).await, Ok(1)));
        assert_eq!(ids(&f.reader).await, [1]);
    }
}
