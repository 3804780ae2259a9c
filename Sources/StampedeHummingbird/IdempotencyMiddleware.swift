#if Hummingbird
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Stampede
import StampedeRedis

/// Runs an unsafe request (POST, PATCH) once per `Idempotency-Key`, across every app
/// instance, through a ``SubmissionGuard``:
///
/// - the first request with a key runs the handler, and its response (whatever its status) is
///   stored for the guard's window;
/// - a request with the same key while the first runs gets 409 Conflict;
/// - a later one gets the stored response again, unless its body differs from the first's:
///   422 Unprocessable Content;
/// - a handler that throws stores nothing, and the key is free again.
///
/// Requests without the header, and other methods, pass through.
public struct IdempotencyMiddleware<Context: RequestContext>: RouterMiddleware {
    public let submissions: SubmissionGuard
    public let header: HTTPField.Name
    public let methods: Set<HTTPRequest.Method>
    /// The largest request body read to compare (and to hand on to the handler).
    public let maximumBodySize: Int

    public init(
        submissions: SubmissionGuard, header: HTTPField.Name = HTTPField.Name("Idempotency-Key")!,
        methods: Set<HTTPRequest.Method> = [.post, .patch], maximumBodySize: Int = 1 << 20
    ) {
        self.submissions = submissions
        self.header = header
        self.methods = methods
        self.maximumBodySize = maximumBodySize
    }

    /// What is stored per key: the response, and a digest of the request body it answered.
    struct Outcome: Codable, Sendable {
        var response: StoredResponse
        var bodyDigest: String
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard methods.contains(request.method), let idempotencyKey = request.headers[header], !idempotencyKey.isEmpty else {
            return try await next(request, context)
        }
        var request = request
        let body = try await request.collectBody(upTo: maximumBodySize)
        let digest = SHA1.hexDigest(Array(buffer: body))
        let key = "\(request.method.rawValue) \(request.uri.path) \(idempotencyKey)"
        let exchange = HandlerExchange<Outcome>()
        let submissions = self.submissions
        let outcome: Outcome
        do {
            outcome = try await exchange.run(handler: {
                let response = try await next(request, context)
                let collector = BodyCollector()
                try await response.body.write(collector.writer)
                return Outcome(response: StoredResponse(status: response.status, headers: response.headers, body: collector.bytes, storedAt: Date()), bodyDigest: digest)
            }) { callHandler in
                try await submissions.once(key, as: Outcome.self) { try await callHandler() }
            }
        } catch let error as StampedeError where error.code == .inProgress {
            throw HTTPError(.conflict, message: "a request with this idempotency key is still running")
        } catch let error as StampedeError where error.code == .redisUnavailable {
            throw HTTPError(.serviceUnavailable, message: "the idempotency store is unavailable")
        }
        guard outcome.bodyDigest == digest else {
            throw HTTPError(.unprocessableContent, message: "this idempotency key was used with another request body")
        }
        return outcome.response.response(status: exchange.handled ? "MISS" : "HIT", header: HTTPField.Name("X-Idempotent-Replay")!, now: Date())
    }
}

/// Lets at most a semaphore's permits of requests run the routes behind it at once, across
/// every app instance; a request that finds no permit free within `waitBudget` gets 503
/// Service Unavailable with `Retry-After`.
public struct ConcurrencyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    public let semaphore: RedisSemaphore
    /// The semaphore's name: one per route or group.
    public let name: String
    public let waitBudget: Duration
    /// The `Retry-After` seconds of a 503.
    public let retryAfterSeconds: Int

    public init(semaphore: RedisSemaphore, name: String, waitBudget: Duration = .milliseconds(500), retryAfterSeconds: Int = 1) {
        self.semaphore = semaphore
        self.name = name
        self.waitBudget = waitBudget
        self.retryAfterSeconds = retryAfterSeconds
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let (semaphore, name, options) = (self.semaphore, self.name, LockOptions(maximumWait: waitBudget))
        do {
            return try await HandlerExchange<Response>().run(handler: { try await next(request, context) }) { callHandler in
                try await semaphore.withPermit(name, options: options) { _ in try await callHandler() }
            }
        } catch let error as StampedeError where error.code == .waitTimedOut || error.code == .redisUnavailable {
            var headers = HTTPFields()
            headers[HTTPField.Name("Retry-After")!] = String(retryAfterSeconds)
            return Response(status: .serviceUnavailable, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "too many requests at once; try again\n")))
        }
    }
}
#endif
