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
