"""Training-free architecture search: regularised (aging) evolution scored by a proxy under a latency budget.

Real et al. (2019), "Regularized evolution for image classifier architecture search": a population of
``population`` random architectures; at each step ``sample_size`` members are drawn at random, the
best of them (by proxy score) is mutated (``space.mutate``), the child joins the population and the
oldest member leaves. Here every architecture is feasible: its latency predicted by the latency
lookup table (:mod:`saswot_gp.latency`) is at most ``max_latency_ms`` (random members are
rejection-sampled, infeasible children are redrawn from the same parent up to a cap). Candidates are
never trained: each is built once with weights from ``seed`` and scored by the proxy on one fixed
batch (one forward and backward). ``budget`` counts distinct architectures scored; scores are cached
by architecture, so a revisited architecture costs nothing.

The search state (population, history of scores, RNG state) is checkpointed atomically as JSON
every few scores; resuming gives the same result as an uninterrupted run.

On a Dask cluster (``executor``, :mod:`saswot_gp.execution`) the search is asynchronous (steady-state): a few
tasks (``in_flight``, default twice the workers) are in flight at once, each building from (space,
architecture, seed) and scoring on the batch scattered once to every worker a group of ``per_task`` candidates
(default: as many as take about 100 ms, from the candidates timed so far, so that Dask's per-task cost stays
small next to the scoring; one until then). When a task's scores arrive the client records them, the
candidates join the population (the oldest leave) and the next group is proposed from the population as it
is then. Every score equals the serial one for the same architecture, and with one task of one candidate in
flight (``in_flight=1, per_task=1``) the run is the serial run exactly; otherwise proposals are made
before the results still in flight are known, and those results arrive in an order that depends on timing,
so which architectures get scored (the history, the top list) is not reproducible from the seed: not equal
to the serial run's and not equal between two asynchronous runs. Checkpoints also keep the candidates in
flight (``pending``); a resumed run scores them first, so nothing proposed is lost.

At the end the top K can be measured on the table's runtime, threads and device (``remeasure``; the CLI does by
default): the top K and their ranks are the proxy's, and rows whose measured latency misses the budget are marked
(``meets_budget`` false) and moved to the end of the list, so noise in the measurement never reorders the rest.
"""

from .engine import CHECKPOINT_FORMAT, MUTATION_TRIES, SAMPLE_TRIES  # noqa: F401
from .run import (CHECKPOINT, RESUME_KEYS, RUN_FILES, finish, format_top, parse_budget,  # noqa: F401
                  remeasure_top, resolve_lut, run_search, search_cost)
from .scorer import BATCH_KINDS, ProxyScorer, search_batch  # noqa: F401
