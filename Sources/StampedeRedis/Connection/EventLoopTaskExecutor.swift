import NIOCore

/// Runs Swift tasks on a NIO event loop thread.
///
/// A task that prefers this executor (`withTaskExecutorPreference`) runs on the same thread
/// as its connection: sending a command and resuming on its reply then cross no thread,
/// which is what one task issuing commands back to back gains most from.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
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
    /// Work run there must not block: it shares the thread with the connection's I/O.
    public var taskExecutor: EventLoopTaskExecutor { executor }
}
