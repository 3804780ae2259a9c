@testable import Stampede
import StampedeTestSupport
import Synchronization
import Testing

@Suite("SingleFlight", .timeLimit(.minutes(2)))
struct SingleFlightTests {
    /// Counts operation runs, says when they start, and holds them until released.
    final class Origin: Sendable {
        private let state = Mutex((calls: 0, gate: [CheckedContinuation<Void, Never>](), open: false))
        private let called = AsyncSignal()
        var calls: Int { state.withLock { $0.calls } }

        func load(_ value: Int) async -> Int {
            await withCheckedContinuation { continuation in
                let open = state.withLock { state -> Bool in
                    state.calls += 1
                    if !state.open { state.gate.append(continuation) }
                    return state.open
                }
                called.notify()
                if open { continuation.resume() }
            }
            return value
        }

        /// Returns once at least `count` runs have started.
        func waitForCalls(_ count: Int = 1) async {
            while true {
                let seen = called.generation
                if calls >= count || Task.isCancelled { return }
                await called.wait(after: seen)
            }
        }

        func release() {
            let waiting = state.withLock { state in
                state.open = true
                defer { state.gate = [] }
                return state.gate
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    struct Failure: Error, Equatable { let code: Int }

    @Test func coalescesConcurrentCallsIntoOneOperation() async throws {
        let flights = SingleFlight<String, Int>()
        let origin = Origin()
        let results = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for _ in 0..<100 {
                group.addTask { try await flights.run(key: "k") { await origin.load(42) } }
            }
            #expect(await eventually { flights.waiting(for: "k") == 100 })
            origin.release()
            return try await group.reduce(into: [(Int, Bool)]()) { $0.append($1) }
        }
        #expect(origin.calls == 1)
        #expect(results.allSatisfy { $0.0 == 42 })
        #expect(results.filter { !$0.1 }.count == 1, "exactly one caller started the operation")
        #expect(flights.count == 0)
    }

    @Test func theErrorReachesEveryCaller() async throws {
        let flights = SingleFlight<String, Int>()
        let origin = Origin()
        let errors = await withTaskGroup(of: Failure?.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    do {
                        _ = try await flights.run(key: "k") {
                            _ = await origin.load(0)
                            throw Failure(code: 7)
                        }
                        return nil
                    } catch {
                        return error as? Failure
                    }
                }
            }
            #expect(await eventually { flights.waiting(for: "k") == 10 })
            origin.release()
            return await group.reduce(into: [Failure?]()) { $0.append($1) }
        }
        #expect(origin.calls == 1)
        #expect(errors.count == 10)
        #expect(errors.allSatisfy { $0 == Failure(code: 7) })
    }

    @Test func aCancelledCallerLeavesWithoutCancellingTheOperation() async throws {
        let flights = SingleFlight<String, Int>()
        let origin = Origin()
        let operationCancelled = Mutex(false)
        let first = Task {
            try await flights.run(key: "k") {
                let value = await origin.load(5)
                operationCancelled.withLock { $0 = Task.isCancelled }
                return value
            }
        }
        await origin.waitForCalls()
        let second = Task { try await flights.run(key: "k") { await origin.load(6) } }
        #expect(await eventually { flights.waiting(for: "k") == 2 })
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        origin.release()
        let (value, shared) = try await second.value
        #expect(value == 5)
        #expect(shared)
        #expect(origin.calls == 1)
        #expect(!operationCancelled.withLock { $0 })
    }

    @Test func aFinishedOperationIsNotReused() async throws {
        let flights = SingleFlight<String, Int>()
        let origin = Origin()
        origin.release()
        let first = try await flights.run(key: "k") { await origin.load(1) }
        let second = try await flights.run(key: "k") { await origin.load(2) }
        #expect(first.value == 1 && !first.shared)
        #expect(second.value == 2 && !second.shared)
        #expect(origin.calls == 2)
    }

    @Test func forgetLetsTheNextCallStartANewOperation() async throws {
        let flights = SingleFlight<String, Int>()
        let old = Origin()
        let fresh = Origin()
        fresh.release()
        let waiting = Task { try await flights.run(key: "k") { await old.load(1) } }
        await old.waitForCalls()
        flights.forget("k")
        let next = try await flights.run(key: "k") { await fresh.load(2) }
        #expect(next.value == 2 && !next.shared)
        old.release()
        #expect(try await waiting.value.value == 1)
        #expect(flights.count == 0, "the old flight must not remove the new one's entry")
    }

    @Test func differentKeysRunIndependently() async throws {
        let flights = SingleFlight<Int, Int>()
        let origin = Origin()
        origin.release()
        let values = try await withThrowingTaskGroup(of: Int.self) { group in
            for key in 0..<8 { group.addTask { try await flights.run(key: key) { await origin.load(key) }.value } }
            return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
        }
        #expect(values == Set(0..<8))
        #expect(origin.calls == 8)
    }

    @Test func aQuickFirstTryIsSharedAndFallsBackToTheOperation() async throws {
        let flights = SingleFlight<String, Int>()
        let origin = Origin()
        // The quick try answers: the operation never runs, and callers arriving meanwhile join.
        let quick = Task {
            try await flights.run(key: "k", quickly: { await origin.load(1) }) { 99 }
        }
        await origin.waitForCalls()
        let joiner = Task { try await flights.run(key: "k") { 98 } }
        #expect(await eventually { flights.waiting(for: "k") == 1 })
        origin.release()
        #expect(try await quick.value.value == 1)
        let joined = try await joiner.value
        #expect(joined.value == 1 && joined.shared)
        // No quick answer: the operation runs.
        let fallback = try await flights.run(key: "k", quickly: { nil }) { 2 }
        #expect(fallback.value == 2 && !fallback.shared)
        #expect(flights.count == 0)
    }

    @Test("forgotten during the quick try, with or without callers joined: everyone still gets the result, and nothing is left behind")
    func forgetDuringTheQuickTry() async throws {
        let flights = SingleFlight<String, Int>()
        // A caller joined, then the key was forgotten, then the quick try answered.
        let quick = Origin()
        let first = Task { try await flights.run(key: "k", quickly: { await quick.load(1) }) { 99 } }
        await quick.waitForCalls()
        let joiner = Task { try await flights.run(key: "k") { 98 } }
        #expect(await eventually { flights.waiting(for: "k") == 1 })
        flights.forget("k")
        #expect(flights.waiting(for: "k") == 0 && flights.count == 0)
        quick.release()
        #expect(try await first.value.value == 1)
        let joined = try await joiner.value
        #expect(joined.value == 1 && joined.shared)

        // Nobody joined, the key was forgotten, and the quick try had no answer: the first
        // caller waits for its operation off the map, while a new caller starts its own.
        let slow = Origin()
        let operation = Origin()
        let second = Task { try await flights.run(key: "k", quickly: { await slow.load(0) == 0 ? nil : 0 }) { await operation.load(2) } }
        await slow.waitForCalls()
        flights.forget("k")
        slow.release()
        await operation.waitForCalls()
        let other = try await flights.run(key: "k", quickly: { 3 }) { 97 }
        #expect(other.value == 3 && !other.shared, "a new flight, not the forgotten one")
        operation.release()
        let waited = try await second.value
        #expect(waited.value == 2 && !waited.shared)
        #expect(flights.count == 0)
    }
}
