import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"

/** Effect's built-in tracer, which keeps spans in memory only. */
const nativeTracer = Effect.runSync(Effect.tracer)

/**
 * `Effect.withSpan`, but only when the app has installed a tracer that can export spans: on a
 * hot path a span costs ~20 µs, more than the work it would describe.
 */
export const withSpanIfTraced = (name: string, options: Tracer.SpanOptions | (() => Tracer.SpanOptions)) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) =>
    tracer === nativeTracer ? self : Effect.withSpan(self, name, typeof options === "function" ? options() : options)
  )
