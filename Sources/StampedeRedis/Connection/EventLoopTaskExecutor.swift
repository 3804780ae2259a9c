import NIOCore
import Synchronization

/// Runs Swift tasks on a NIO event loop thread.
///
/// A task that prefers this executor (`withTaskExecutorPreference`) runs on the same thread
/// as its connection: sending a command and resuming on its reply then cross no thread,
/// which is what one task issuing commands back to back gains most from.
///
/// Jobs queue here and run in batches, one event-loop task per batch, so that the replies
/// of one read resume their callers together. Once the event loop has shut down, jobs queued here never run, as with any work
/// left on a loop that stops.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop

    private struct Queue {
        var jobs: [UnownedJob] = []
        /// The array the last batch ran from, emptied, kept for the next batch to queue
        /// into: two arrays take turns, so a batch costs no array allocation.
        var spare: [UnownedJob] = []
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

    /// Runs the jobs queued so far, in order; jobs they enqueue go to the next batch.
    private func drain() {
        var batch = queue.withLock { queue in
            queue.drainScheduled = false
            var batch: [UnownedJob] = []
            swap(&batch, &queue.spare)
            swap(&batch, &queue.jobs)
            return batch
        }
        for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        batch.removeAll(keepingCapacity: true)
        // Kept for the next batch, with the capacity of the largest batch so far.
        queue.withLock { queue in swap(&batch, &queue.spare) }
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
