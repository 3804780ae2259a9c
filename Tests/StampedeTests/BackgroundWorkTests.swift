@testable import Stampede
import Testing

@Suite("BackgroundWork", .timeLimit(.minutes(2)))
struct BackgroundWorkTests {
    @Test("drain waits for the work started before it, not for work started after")
    func drainWaitsForWhatWasStarted() async {
        let clock = ManualClock()
        let work = BackgroundWork()
        let first = OneShot<Void>()
        let second = OneShot<Void>()
        work.start { _ = await first.wait() }
        let draining = Task { await work.drain(until: clock.now + .seconds(60), clock: clock) }
        await clock.waitForSleepers(1)  // the drain is in line
        // Started after the drain: not waited for.
        work.start { _ = await second.wait() }
        first.finish(())
        #expect(await draining.value)
        second.finish(())
        #expect(await work.drain())
    }

    @Test("drain gives up at its deadline on the clock")
    func drainHasADeadline() async {
        let clock = ManualClock()
        let work = BackgroundWork()
        let stuck = OneShot<Void>()
        work.start { _ = await stuck.wait() }
        let draining = Task { await work.drain(until: clock.now + .seconds(5), clock: clock) }
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(5))
        #expect(await draining.value == false)
        stuck.finish(())
        #expect(await work.drain())
    }

    @Test("work does not inherit the task-local values of the caller that started it")
    func noInheritedTaskLocals() async {
        let work = BackgroundWork()
        let seen = OneShot<Set<String>>()
        RedisMutex.$heldLocks.withValue(["held-by-the-caller"]) {
            work.start { seen.finish(RedisMutex.heldLocks) }
        }
        #expect(await seen.wait() == [])
    }
}

@Suite("OneShot", .timeLimit(.minutes(2)))
struct OneShotTests {
    @Test("every waiter gets the value; a cancelled waiter leaves; a deadline on the clock gives nil")
    func waiters() async {
        let value = OneShot<Int>()
        let waiting = (0..<10).map { _ in Task { await value.wait() } }
        let cancelled = Task { await value.wait() }
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        let clock = ManualClock()
        let late = Task { await value.wait(until: clock.now + .seconds(1), clock: clock) }
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(1))
        #expect(await late.value == nil)
        value.finish(7)
        value.finish(8)
        for task in waiting { #expect(await task.value == 7) }
        #expect(await value.wait() == 7, "the first value stays")
    }
}
