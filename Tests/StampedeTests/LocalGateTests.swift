@testable import Stampede
import Synchronization
import Testing

@Suite("Local gate")
struct LocalGateTests {
    @Test func admitsOneAtATimeFirstComeFirstServed() async throws {
        let gate = LocalGate()
        #expect(gate.tryEnter())
        #expect(!gate.tryEnter())
        let order = Recorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<5 {
                group.addTask {
                    #expect(await gate.enter(until: .now + .seconds(30), clock: SystemClock()))
                    order.append(index)
                    gate.leave()
                }
                // Let each waiter queue before the next one arrives.
                try await Task.sleep(for: .milliseconds(20))
            }
            gate.leave()
            try await group.waitForAll()
        }
        #expect(order.values == [0, 1, 2, 3, 4])
        #expect(gate.isIdle)
    }

    @Test func aWaiterGivesUpAtItsDeadlineAndIsSkipped() async {
        let gate = LocalGate()
        #expect(gate.tryEnter())
        #expect(await !gate.enter(until: .now + .milliseconds(50), clock: SystemClock()))
        gate.leave()
        // The one that gave up did not take the turn with it.
        #expect(gate.tryEnter())
        gate.leave()
        #expect(gate.isIdle)
    }

    @Test func aCancelledWaiterGivesUp() async {
        let gate = LocalGate()
        #expect(gate.tryEnter())
        let waiter = Task { await gate.enter(until: .now + .seconds(30), clock: SystemClock()) }
        try? await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        #expect(await waiter.value == false)
        gate.leave()
        #expect(gate.isIdle)
    }

    @Test func gatesAreDroppedWhenNoLongerUsed() {
        let gates = LocalGates()
        let first = gates.checkOut("a")
        let second = gates.checkOut("a")
        #expect(first === second)
        gates.checkIn("a")
        #expect(gates.count == 1)
        gates.checkIn("a")
        #expect(gates.count == 0)
    }
}

/// Values appended from any task, in order.
final class Recorder: Sendable {
    private let state = Mutex<[Int]>([])
    func append(_ value: Int) { state.withLock { $0.append(value) } }
    var values: [Int] { state.withLock { $0 } }
}
