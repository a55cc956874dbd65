import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, Option, Tracer } from "effect"
import * as Consumer from "../src/Consumer.js"
import * as ConsumerTest from "../src/ConsumerTest.js"

/** A tracer that records the spans it is asked for (the native one is used underneath). */
const recordingTracer = Effect.gen(function*() {
  const native = yield* Effect.tracer
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return { tracer, spans }
})

const counterValue = (counter: typeof Consumer.handledTotal, consumer: string) =>
  Effect.map(Metric.value(Metric.tagged(counter, "consumer", consumer)), (state) => state.count)

describe("observability", () => {
  it.effect("with a tracer installed, each handled notification gets a span named after the consumer, parent of the handler's spans", () =>
    Effect.gen(function*() {
      const { tracer, spans } = yield* recordingTracer
      const consumer = Consumer.make({
        id: "traced",
        channels: ["orders"],
        handle: () => Effect.void.pipe(Effect.withSpan("send-mail"))
      })
      yield* ConsumerTest.run(consumer, [{ payload: 1, id: 7n }, { payload: 2, id: 8n }]).pipe(Effect.withTracer(tracer))
      const ours = spans.filter((s) => s.name === "pgwatch.consume traced")
      expect(ours).toHaveLength(2)
      expect(ours[0]!.attributes.get("pgwatch.log_id")).toBe("7")
      expect(ours[0]!.attributes.get("pgwatch.channel")).toBe("orders")
      const child = spans.find((s) => s.name === "send-mail")!
      expect(Option.map(child.parent, (p) => p.spanId)).toEqual(Option.some(ours[0]!.spanId))
    }))

  it.effect("counts handled, retried and dead-lettered notifications per consumer", () =>
    Effect.gen(function*() {
      const consumer = Consumer.make({
        id: "counted",
        channels: ["orders"],
        handle: (n) =>
          n.payload === "bad" ? Effect.fail(new Consumer.Permanent({ message: "no" })) : Effect.void
      })
      yield* ConsumerTest.run(consumer, [{ payload: "ok" }, { payload: "ok" }, { payload: "bad" }])
      expect(yield* counterValue(Consumer.handledTotal, "counted")).toBe(2)
      expect(yield* counterValue(Consumer.deadLetteredTotal, "counted")).toBe(1)
      expect(yield* counterValue(Consumer.retriedTotal, "counted")).toBe(0)
    }))
})
