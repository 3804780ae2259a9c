import StampedeTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import StampedeRedis

@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<Int>
    let loop = EmbeddedEventLoop()
    let promises = NIOLockedValueBox<[EventLoopPromise<RedisValue>]>([])

    /// A reply target; the state machine never completes one, so each test completes them
    /// all at its end (NIO reports a promise that is never completed).
    func target() -> (ReplyTarget, EventLoopFuture<RedisValue>) {
        let promise = loop.makePromise(of: RedisValue.self)
        promises.withLockedValue { $0.append(promise) }
        return (.promise(promise), promise.futureResult)
    }

    func completeTargets() {
        for promise in promises.withLockedValue({ $0 }) { promise.succeed(.null) }
    }

    @Test func firstCommandConnectsAndQueuedCommandsGoOutInOrderOnceConnected() {
        defer { completeTargets() }
        var machine = Machine()
        guard case .connect = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
            Issue.record("the first command must connect"); return
        }
        guard case .none = machine.submit(["ECHO", "x"], target: target().0, deadline: .distantFuture) else {
            Issue.record("a second command while connecting must wait"); return
        }
        guard case .flush(let bytes, let commands, let isReconnect) = machine.connected(1) else {
            Issue.record("connected must flush"); return
        }
        #expect(commands.count == 2)
        #expect(!isReconnect)
        #expect(String(buffer: bytes) == "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n")
    }

    /// A machine connected on link 7 whose first command of a burst scheduled a flush.
    func connectedWithAFlushScheduled() -> Machine? {
        var machine = Machine()
        _ = machine.submit(["PING"], target: target().0, deadline: .distantFuture)
        _ = machine.connected(7)
        guard case .scheduleFlush(7) = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
            Issue.record("the first command of a burst schedules a flush"); return nil
        }
        return machine
    }

    @Test func oneFlushIsScheduledPerBurst() {
        defer { completeTargets() }
        guard var machine = connectedWithAFlushScheduled() else { return }
        for _ in 0..<10 {
            guard case .none = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
                Issue.record("later commands ride along"); return
            }
        }
        let burst = machine.takePending()
        #expect(burst?.commands.count == 11)
        let nothing = machine.takePending()
        #expect(nothing == nil)
    }

    @Test func aLargeBurstAsksForAnEarlyWrite() {
        defer { completeTargets() }
        guard var machine = connectedWithAFlushScheduled() else { return }
        for _ in 1..<(Machine.earlyFlushCount - 1) {
            guard case .none = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
                Issue.record("a small burst rides along with its scheduled flush"); return
            }
        }
        // The burst reaches the limit: a caller on the event loop writes it at once.
        guard case .flushIfOnEventLoop(7) = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
            Issue.record("a burst of \(Machine.earlyFlushCount) asks for an early write"); return
        }
        #expect(machine.takePending()?.commands.count == Machine.earlyFlushCount)
        // Written: the next command starts a new burst with its own flush.
        guard case .scheduleFlush(7) = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
            Issue.record("after an early write the next command schedules a flush again"); return
        }
    }

    @Test func aFailedConnectFailsQueuedCommandsAndFailsFastUntilTheRetry() throws {
        defer { completeTargets() }
        var machine = Machine()
        let (first, future) = target()
        _ = machine.submit(["PING"], target: first, deadline: .distantFuture)
        let refused = RedisError(.connectionRefused, "nothing there")
        let failure = machine.connectFailed(refused)
        let failed = try #require(failure)
        #expect(failed.failed.count == 1)
        #expect(failed.retryAttempt == 0)
        guard case .fail(let error) = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
            Issue.record("must fail fast while waiting"); return
        }
        #expect(error.code == .connectionRefused)
        let retry = machine.retryDue()
        #expect(retry)
        let second = machine.connectFailed(refused)
        #expect(second?.retryAttempt == 1)
        _ = future
    }

    @Test func aClosedLinkReconnectsAndKeepsUnsentCommands() {
        defer { completeTargets() }
        var machine = Machine()
        _ = machine.submit(["PING"], target: target().0, deadline: .distantFuture)
        _ = machine.connected(1)
        _ = machine.submit(["GET", "k"], target: target().0, deadline: .distantFuture)
        let staleClosed = machine.linkClosed(isCurrent: { $0 == 2 })
        #expect(!staleClosed, "a stale link's close is ignored")
        let currentClosed = machine.linkClosed(isCurrent: { $0 == 1 })
        #expect(currentClosed)
        guard case .flush(_, let commands, let isReconnect) = machine.connected(2) else {
            Issue.record("must flush on reconnect"); return
        }
        #expect(commands.count == 1)
        #expect(isReconnect)
    }

    @Test func closeRefusesEverythingAfterwards() {
        defer { completeTargets() }
        var machine = Machine()
        _ = machine.submit(["PING"], target: target().0, deadline: .distantFuture)
        let (link, unsent) = machine.close()
        #expect(link == nil)
        #expect(unsent.count == 1)
        guard case .closeLink = machine.connected(3) else { Issue.record("a late connect must be closed"); return }
        guard case .fail(let error) = machine.submit(["PING"], target: target().0, deadline: .distantFuture) else {
            Issue.record("must refuse"); return
        }
        #expect(error.code == .clientClosed)
    }
}
