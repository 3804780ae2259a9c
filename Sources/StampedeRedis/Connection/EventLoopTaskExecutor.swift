import NIOCore
import Synchronization

/// Runs Swift tasks on a NIO event loop thread.
///
/// A task that prefers this executor (`withTaskExecutorPreference`) runs on the same thread
/// as its connection: sending a command and resuming on its reply then cross no thread,
/// which is what one task issuing commands back to back gains most from.
///
/// Jobs queue here and run in batches, one event-loop task per batch: the replies of one
/// read resume their callers together, and a loop task per job cost a closure allocation
/// each.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop

    private struct Queue {
        var jobs: [UnownedJob] = []
        /// Whether a loop task that runs `jobs` is already scheduled.
        var drainScheduled = false
    }
    private let queue = Mutex(Queue())

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let schedule = queue.withLock { queue in
            queue.jobs.append(job)
            guard !queue.drainScheduled else { return false }
            queue.drainScheduled = true
            return true
        }
        if schedule { eventLoop.execute { self.drain() } }
    }

    /// Runs the jobs queued so far; jobs they enqueue go to the next batch.
    private func drain() {
        let jobs = queue.withLock { queue in
            let jobs = queue.jobs
            queue.jobs = []
            // The next batch is likely as large as this one.
            queue.jobs.reserveCapacity(jobs.count)
            queue.drainScheduled = false
            return jobs
        }
        for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}

extension RedisClient {
    /// An executor on the event loop of the client's first connection.
    ///
    /// ```swift
    /// await withTaskExecutorPreference(client.taskExecutor) {
    ///     for key in keys { _ = try await client.send("GET", key) }
    /// }
    /// ```
    ///
    /// Work run there must not block: it shares the thread with the connection's I/O. Nor
    /// may it loop on `Task.yield()` without awaiting anything else: the event loop runs
    /// every task due before it reads again, and a task that only yields is always due, so
    /// the connection would never be read.
    public var taskExecutor: EventLoopTaskExecutor { executor }
}
