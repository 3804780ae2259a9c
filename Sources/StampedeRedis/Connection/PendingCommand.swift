import NIOConcurrencyHelpers
import NIOCore

/// Where the reply to one command goes.
enum ReplyTarget: Sendable {
    /// An `async` caller waiting in ``RedisClient/send(_:)``.
    case continuation(UnsafeContinuation<RedisValue, any Error>)
    /// Connection set-up (AUTH, SELECT, ...), which runs on the event loop.
    case promise(EventLoopPromise<RedisValue>)
    /// One command of a pipelined batch (``RedisClient/pipeline(_:)``).
    case batch(BatchReplies, index: Int)

    /// Delivers a reply; a top-level error reply becomes a thrown ``RedisError``.
    func complete(with value: RedisValue) {
        if case .error(let text) = value {
            fail(RedisError(.serverError, text))
            return
        }
        switch self {
        case .continuation(let continuation): continuation.resume(returning: value)
        case .promise(let promise): promise.succeed(value)
        case .batch(let batch, let index): batch.set(.success(value), at: index)
        }
    }

    func fail(_ error: RedisError) {
        switch self {
        case .continuation(let continuation): continuation.resume(throwing: error)
        case .promise(let promise): promise.fail(error)
        case .batch(let batch, let index): batch.set(.failure(error), at: index)
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

/// Collects the replies of a pipelined batch and resumes its caller once, when all are in.
final class BatchReplies: Sendable {
    private struct State {
        var replies: [Result<RedisValue, RedisError>?]
        var missing: Int
        var continuation: UnsafeContinuation<[Result<RedisValue, RedisError>], Never>?
    }
    private let state: NIOLockedValueBox<State>

    init(count: Int, continuation: UnsafeContinuation<[Result<RedisValue, RedisError>], Never>) {
        state = NIOLockedValueBox(State(replies: Array(repeating: nil, count: count), missing: count, continuation: continuation))
    }

    func set(_ reply: Result<RedisValue, RedisError>, at index: Int) {
        let done = state.withLockedValue { state -> (UnsafeContinuation<[Result<RedisValue, RedisError>], Never>, [Result<RedisValue, RedisError>])? in
            guard state.replies[index] == nil else { return nil }
            state.replies[index] = reply
            state.missing -= 1
            guard state.missing == 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.replies.map { $0! })
        }
        if let (continuation, replies) = done { continuation.resume(returning: replies) }
    }
}
