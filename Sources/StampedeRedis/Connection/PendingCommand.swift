import NIOCore

/// Where the reply to one command goes.
enum ReplyTarget: Sendable {
    /// An `async` caller waiting in ``RedisClient/send(_:)``.
    case continuation(UnsafeContinuation<RedisValue, any Error>)
    /// Connection set-up (AUTH, SELECT, ...), which runs on the event loop.
    case promise(EventLoopPromise<RedisValue>)

    /// Delivers a reply; a top-level error reply becomes a thrown ``RedisError``.
    func complete(with value: RedisValue) {
        if case .error(let text) = value {
            fail(RedisError(.serverError, text))
            return
        }
        switch self {
        case .continuation(let continuation): continuation.resume(returning: value)
        case .promise(let promise): promise.succeed(value)
        }
    }

    func fail(_ error: RedisError) {
        switch self {
        case .continuation(let continuation): continuation.resume(throwing: error)
        case .promise(let promise): promise.fail(error)
        }
    }
}

/// A command written (or about to be written) to a connection, waiting for its reply.
struct PendingCommand: Sendable {
    /// `nil` once the command timed out: its reply, when it comes, is read and dropped,
    /// which keeps the replies that follow matched to their commands.
    var target: ReplyTarget?
    /// When the caller stops waiting.
    let deadline: NIODeadline
}
