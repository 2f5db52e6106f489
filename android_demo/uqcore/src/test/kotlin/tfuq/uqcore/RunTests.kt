package tfuq.uqcore

import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.Request
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener

/**
 * JUnit 4 console runner for run_tests.sh: runs the named test classes, prints each failure
 * and ends with the line `N passed, N failed, N skipped` that CI counts. Exit status 1 on any
 * failure, 2 when no test passed (which must never look like success).
 */
object RunTests {
    @JvmStatic
    fun main(args: Array<String>) {
        if (args.isEmpty()) {
            System.err.println("usage: RunTests TestClass...")
            System.exit(2)
        }
        val classes = args.map { Class.forName(it) }
        val started = LinkedHashSet<Description>()
        val failed = LinkedHashSet<Description>()
        val skipped = LinkedHashSet<Description>()
        val core = JUnitCore()
        core.addListener(object : RunListener() {
            override fun testStarted(description: Description) {
                started.add(description)
            }

            override fun testFailure(failure: Failure) {
                failed.add(failure.description)
                println("FAIL ${failure.description.displayName}")
                println("     ${failure.message}")
                // Vector mismatches explain themselves; a crash needs its stack trace.
                if (failure.exception !is AssertionError) println(failure.trace)
            }

            override fun testAssumptionFailure(failure: Failure) {
                skipped.add(failure.description)
                println("SKIP ${failure.description.displayName}: ${failure.message}")
            }

            override fun testIgnored(description: Description) {
                skipped.add(description)
                println("SKIP ${description.displayName}: @Ignore")
            }
        })
        val start = System.nanoTime()
        for (cls in classes) core.run(Request.aClass(cls))
        val seconds = (System.nanoTime() - start) / 1e9
        // A class that cannot be set up fails without any test having started; it still counts.
        val passed = started.count { it !in failed && it !in skipped }
        val skippedOnly = skipped.count { it !in failed }
        println(String.format(java.util.Locale.ROOT, "uqcore: %d tests in %.1f s", passed + failed.size + skippedOnly, seconds))
        println("$passed passed, ${failed.size} failed, $skippedOnly skipped")
        System.exit(if (failed.isNotEmpty()) 1 else if (passed == 0) 2 else 0)
    }
}
