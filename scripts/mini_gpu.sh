#!/usr/bin/env bash
# The mini reproduction on one GPU in <10-minute calls (docs/RESULTS.md). Every phase resumes
# where the last call stopped (wrap each call in `timeout`); run them in order:
#   bash scripts/mini_gpu.sh data     # world data and latent cache (TEST_FROM=RUN: that run's
#                                     # test set, for runs that differ in training data only;
#                                     # DATA_FROM=RUN: that run's data and latents, for runs
#                                     # that differ in the models only)
#   bash scripts/mini_gpu.sh train    # the video models one after another (PARALLEL=1: side by
#                                     # side), TRAIN_STEPS each
#   bash scripts/mini_gpu.sh export   # bf16 models + logs into OUT
#   bash scripts/mini_gpu.sh rollout  # test-set rollouts of VARIANTS (models from runs/mini_gpu/<v>
#                                     # on a fresh machine; makes the data when it is missing)
#   bash scripts/mini_gpu.sh shipped  # the shipped model (or SHIPPED=CHECKPOINT) rolled out on the
#                                     # same test set, scored by `eval` as millivid-shipped
#   bash scripts/mini_gpu.sh eval     # evaluation of every rolled-out variant (OUT/per_frame.csv.gz:
#                                     # its rows, the file to keep), report, and the return
#                                     # contrast (benchmarks/self_consistency.py)
#   bash scripts/mini_gpu.sh all      # data, train, export, rollout, eval: the phases not done
#                                     # yet, in order (RUN/done/ marks each); LIMIT=SECONDS stops
#                                     # the call in time (exit 75: call again to go on);
#                                     # PHASES="rollout eval": only those (e.g. for models
#                                     # copied into RUN/video/; "... rollout shipped eval": the
#                                     # shipped model scored too); CONTINUING=1 (the
#                                     # calls after the first): exit 3 at once when RUN has
#                                     # no run in progress (a fresh machine) instead of
#                                     # starting the run over
#   bash scripts/mini_gpu.sh curve    # repeatable like all: data, then per step count of
#                                     # POINTS (e.g. "2500 5000 10000") train on to it and
#                                     # score there (sweep s<point>); OUT/steps_curve.png, .md,
#                                     # .json (POINTS_JSON=FILE: earlier points join the curve)
#   bash scripts/mini_gpu.sh sweep    # VARIANTS' models rolled out and evaluated again at other
#                                     # sampler settings, SWEEP="name:args;name:args", e.g.
#                                     # SWEEP="noise0:--sample-context-noise 0;cfg15:--set
#                                     # diffusion.guidance=1.5;ddim50:--sample-steps 50", each
#                                     # into RUN-<name> (test set, models and the trivial
#                                     # baselines' rollouts and scores linked from RUN)
#   bash scripts/mini_gpu.sh ae       # autoencoders side by side, AE_STEPS each: hierarchical,
#                                     # cascaded, all-levels, c32 (C = 32), c32-lr2 (and lr
#                                     # 2e-3), c32-30db (the 30 dB recipe) (AE_VARIANTS);
#                                     # AE_COOLDOWN: lr cooldown fraction (default 0); resumes
#   bash scripts/mini_gpu.sh bench    # per-method mini train/rollout benchmarks (PAPER=1: paper too)
# Run from the checkout root with PYTHONPATH=. ; RUN (default /tmp/mini) holds the run folder and
# OUT (default out/mini_gpu) receives the outputs to keep. A trainer stopped by `timeout` saves
# its step (SIGTERM -> checkpoint) and the next `train` call resumes it.
# GPUS="0 1": spread the variants of `train` (PARALLEL=1) and `rollout` round-robin over these
# GPUs of the machine (default: the one CUDA picks).
# STATE=DIR: `train` also writes each model's continuation state (bf16, files <= 16 MiB) to
# DIR/<variant> with every checkpoint, and goes on from it when it is further along than RUN's:
# a training longer than one machine's lease, in pieces on fresh machines that get only DIR.
# STATE_KEEP=all|model (default all): what those states keep; model: the weights alone (about a
# third of the size; the EMA restarts with its warmup, the optimizer moments from zero).
# DDP_GPUS=N: `train` trains each variant on N GPUs at once (torchrun + DDP; BATCH is per GPU,
# so BATCH=64 DDP_GPUS=2 keeps the global batch of 128).
# STORE=1|0: world videos written uncompressed (faster) or compressed; a training video without
# labels and depth is 12.6 MB (4.9 MB compressed); the default is 1 up to TRAIN_VIDEOS=2048
# (26 GB), so that 4,096 fit a 64 GiB disk compressed.
# Dry run on a CPU: PRESET=tiny DEVICE=cpu AE= TRAIN_VIDEOS=4 TEST_VIDEOS=2 TRAIN_STEPS=6 ...
set -uo pipefail
RUN=${RUN:-/tmp/mini}
OUT=${OUT:-out/mini_gpu}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
PRESET=${PRESET:-mini}
DEVICE=${DEVICE:-cuda}
AE=${AE-checkpoints/mini/ae}  # empty: train one in the ae stage
# config overrides for every stage, e.g. the C = 32 autoencoder:
# AE=checkpoints/mini/ae-c32 SETS="ae.channels=32" (restored first: docs/AUTOENCODER.md)
SET_ARGS=()
for o in ${SETS:-}; do SET_ARGS+=(--set "$o"); done
TRAIN_VIDEOS=${TRAIN_VIDEOS:-512}
TEST_VIDEOS=${TEST_VIDEOS:-64}
STORE=${STORE:-$((TRAIN_VIDEOS <= 2048))}
STORE_ARG=()
[ "$STORE" = 1 ] && STORE_ARG=(--store)
TRAIN_STEPS=${TRAIN_STEPS:-5000}
BATCH=${BATCH:-128}
WORKERS=${WORKERS:-12}
ROLLOUT_GIVEN=${ROLLOUT_S:+1}
ROLLOUT_S=${ROLLOUT_S:-380}
STEPS=${STEPS:-16}
AE_STEPS=${AE_STEPS:-2500}
AE_COOLDOWN=${AE_COOLDOWN:-0}
VARIANTS=${VARIANTS:-millivid-own-level-memory framepack-memory fullres-memory}  # + upscale cascaded (ablations)
COMPILE=true
[ "$DEVICE" = cpu ] && COMPILE=false
read -ra GPU_LIST <<< "${GPUS:-}"
gpu_of() {  # the GPU of the i-th variant (empty: the default device)
  [ "${#GPU_LIST[@]}" -gt 0 ] && echo "${GPU_LIST[$(($1 % ${#GPU_LIST[@]}))]}"
}
REPRO_ARGS=(--preset "$PRESET" ${AE:+--ae "$AE"} --train-videos "$TRAIN_VIDEOS"
  --test-videos "$TEST_VIDEOS" --device "$DEVICE" "${SET_ARGS[@]}")
repro() { python -m millivid reproduce --out "$RUN" "${REPRO_ARGS[@]}" "$@"; }
rollouts() {  # `reproduce "$@"` in run folder $1 with the rollout settings, within ROLLOUT_S
  local out=$1
  shift
  timeout "$ROLLOUT_S" python -m millivid reproduce --out "$out" "${REPRO_ARGS[@]}" \
    --rollout-batch 64 --sample-steps "$STEPS" "$@"
}
finish() {  # wait for these processes to end, also when a SIGTERM interrupts `wait`
  local rc=0 s pid
  for pid in "$@"; do
    while wait "$pid"; s=$?; [ "$s" -gt 128 ] && kill -0 "$pid" 2>/dev/null; do :; done
    [ "$s" = 0 ] || rc=$s
  done
  return $rc
}
models_and_test_set() {  # on a fresh machine: VARIANTS' models from runs/mini_gpu/<v>/, the data
  for v in $VARIANTS; do
    [ -d "$RUN/video/$v" ] || { mkdir -p "$RUN/video" && cp -r "runs/mini_gpu/$v" "$RUN/video/$v"; }
  done
  test_set
}
test_set() {  # RUN's test set (and data), made when it is missing
  [ -d "$RUN/gt" ] || repro --stages data --workers 16 "${STORE_ARG[@]}" >> "$OUT/data.log" 2>&1
}
beside() {  # run folder $1 beside RUN: RUN's test set and its own autoencoders (without AE) linked
  mkdir -p "$1/video"
  ln -sfn "$(cd "$RUN" && pwd)/gt" "$1/gt"
  for a in "$RUN"/ae*/; do
    [ -d "$a" ] && ln -sfn "$(cd "$a" && pwd)" "$1/$(basename "$a")"
  done
}
in_order() {  # items "MARKER PHASE [VAR=value ...]": each not yet marked done in RUN/done runs
  # once, in order, with those variables, within LIMIT seconds (exit 75: call again to go on);
  # a rollout or sweep starts only with ROLLOUT_NEED seconds left (default 0)
  local end=$((SECONDS + ${LIMIT:-1000000000})) item marker phase left need rc
  if [ "${CONTINUING:-0}" = 1 ] && [ ! -d "$RUN/done" ]; then
    echo "CONTINUING=1: $RUN has no run in progress (a fresh machine?); nothing started" >&2
    return 3
  fi
  mkdir -p "$RUN/done"
  for item in "$@"; do
    read -ra words <<< "$item"
    marker=${words[0]} phase=${words[1]}
    [ -e "$RUN/done/$marker" ] && continue
    left=$((end - SECONDS - 15))  # margin for a stopped trainer to save
    need=0
    case $phase in rollout | shipped | sweep) need=${ROLLOUT_NEED:-0} ;; esac
    [ "$left" -gt "$need" ] ||
      { echo "$marker: no time left in LIMIT ($left s, $need needed); call again" >&2; return 75; }
    [ -n "$ROLLOUT_GIVEN" ] || export ROLLOUT_S=$left
    env "${words[@]:2}" timeout "$left" bash "$0" "$phase"
    rc=$?
    [ "$rc" = 0 ] && { touch "$RUN/done/$marker"; continue; }
    [ "$rc" = 124 ] || [ "$SECONDS" -ge $((end - 20)) ] &&
      { echo "$marker: stopped by its time limit (LIMIT, ROLLOUT_S); call again to go on" >&2
        return 75; }
    echo "$marker failed (exit $rc); its log is in $OUT or $RUN" >&2
    return "$rc"
  done
}
bench() { [ "$DEVICE" = cpu ] || python benchmarks/bench_video_model.py --device "$DEVICE" "$@"; }
consistency() {  # the return contrast of every rollout set of run folder $1, paired with the
  # first variant's: $1/eval/self_consistency.md and .json (benchmarks/self_consistency.py)
  local first=${VARIANTS%% *} context
  context=$(python -c "from millivid.presets import REPRODUCE_PRESETS as R; print(R['$PRESET'].context)")
  python benchmarks/self_consistency.py --pred-dir "$1/rollouts" --gt-dir "$1/gt" \
    --start "$context" --reference "$first" --json "$1/eval/self_consistency.json" \
    > "$1/eval/self_consistency.md"
}
sweep_tables() {  # OUT/sweep_$2.tar.gz: run folder $1's tables and rows (+ files $3...), written
  # as soon as they exist, so that a sweep stopped later (the return contrast) still leaves them
  local run=$1 name=$2
  shift 2
  (cd "$run" && tar czf "$OUT/sweep_$name.tar.gz.tmp" eval/table.md eval/paired.md \
    eval/per_frame.csv "$@") && mv "$OUT/sweep_$name.tar.gz.tmp" "$OUT/sweep_$name.tar.gz"
}

case "${1:-}" in
data)  # + the cascaded autoencoder and its latents when VARIANTS has cascaded
  # TEST_FROM=OTHER_RUN: use that run's test set (same world, e.g. only world.train_actions
  # differs) instead of rendering it again; render the runs' data one after another, not at once
  # DATA_FROM=OTHER_RUN: use that run's data and latent cache (same world and data settings,
  # e.g. other variants or model settings on the same videos) instead of rendering them again
  if [ -n "${TEST_FROM:-}" ] && [ ! -e "$RUN/data/test" ]; then
    mkdir -p "$RUN/data" && ln -s "$(cd "$TEST_FROM/data/test" && pwd)" "$RUN/data/test"
  fi
  if [ -n "${DATA_FROM:-}" ]; then
    mkdir -p "$RUN"
    for d in data latents; do
      [ -e "$RUN/$d" ] || ln -s "$(cd "$DATA_FROM/$d" && pwd)" "$RUN/$d" || exit 1
    done
  fi
  repro --variants "${VARIANTS// /,}" --stages data,ae,latents --workers 16 "${STORE_ARG[@]}" \
    --set ae_train.compile="$COMPILE" > "$OUT/data.log" 2>&1 || exit 1
  ;;
bench)
  [ "${PAPER:-0}" = 1 ] && bench --preset paper --mode train --batch 24 > "$OUT/bench_paper.txt" 2>&1
  for m in millivid framepack fullres; do  # the mini preset, per method
    bench --preset mini --mode train --batch "$BATCH" --method "$m" >> "$OUT/bench_mini.txt" 2>&1
    bench --preset mini --mode rollout --batch 8 --steps 3 --method "$m" >> "$OUT/bench_mini.txt" 2>&1
  done
  ;;
train)  # PARALLEL=1: the variants train side by side on the GPU (WORKERS loader processes each)
  # SIGTERM (from `timeout`) reaches the trainers too: they save the step they are at; this shell
  # waits for that instead of dying first, and starts no further variant.
  stop=0
  trap 'stop=1' TERM
  pids=()
  i=0
  for v in $VARIANTS; do
    [ "$stop" = 1 ] && break
    gpu=$(gpu_of $i); i=$((i + 1))
    (trap : TERM; [ -n "$gpu" ] && export CUDA_VISIBLE_DEVICES=$gpu
    repro --variants "$v" --stages video ${DDP_GPUS:+--gpus "$DDP_GPUS"} \
      --set video_train.compile="$COMPILE" \
      --set video_train.batch_size="$BATCH" --set video_train.num_workers="$WORKERS" \
      --set video_train.steps="$TRAIN_STEPS" --set video_train.checkpoint_every=1000 \
      ${STATE:+--continuation "$STATE" --continuation-keep "${STATE_KEEP:-all}"} \
      >> "$RUN/train_$v.log" 2>&1) &
    pids+=($!)
    [ "${PARALLEL:-0}" = 1 ] || finish $! || exit 1
  done
  finish "${pids[@]}" || exit 1
  ;;
export)
  for v in $VARIANTS; do
    python -m millivid video export --ckpt "$RUN/video/$v" --out "$RUN/export/$v" &&
      cp "$RUN/export/$v/checkpoint/model.safetensors" "$OUT/$v.safetensors"
  done
  (cd "$RUN" && tar czf "$OUT/meta.tar.gz" stages.json export/*/checkpoint/config.json \
    video/*/metrics.jsonl train_*.log)
  ;;
rollout)
  models_and_test_set
  declare -A group=()  # variants per GPU (one group without GPUS)
  i=0
  for v in $VARIANTS; do
    gpu=$(gpu_of $i); i=$((i + 1))
    group[${gpu:-default}]+="${group[${gpu:-default}]:+,}$v"
  done
  pids=()
  for gpu in "${!group[@]}"; do
    ([ "$gpu" != default ] && export CUDA_VISIBLE_DEVICES=$gpu
    rollouts "$RUN" --variants "${group[$gpu]}" --stages rollout >> "$OUT/rollout_$gpu.log" 2>&1) &
    pids+=($!)
  done
  rc=0
  finish "${pids[@]}" || rc=$?  # a rollout stopped by ROLLOUT_S resumes in the next call
  cp "$RUN/stages.json" "$OUT/"
  exit "$rc"
  ;;
shipped)  # a given checkpoint (SHIPPED: a folder with config.json and model.safetensors; default
  # the shipped checkpoints/mini/millivid, of variant SHIPPED_VARIANT) rolled out on RUN's test
  # set into RUN/rollouts/SHIPPED_AS (default millivid-shipped): `eval` scores it beside VARIANTS
  sv=${SHIPPED_VARIANT:-millivid-own-level-memory}
  as=${SHIPPED_AS:-millivid-shipped}
  test_set || exit 1
  beside "$RUN-$as"
  [ -e "$RUN-$as/video/$sv/checkpoint" ] || { mkdir -p "$RUN-$as/video/$sv" &&
    cp -r "${SHIPPED:-checkpoints/mini/millivid}" "$RUN-$as/video/$sv/checkpoint"; } || exit 1
  rollouts "$RUN-$as" --variants "$sv" --stages rollout >> "$OUT/rollout_shipped.log" 2>&1 ||
    exit $?
  mkdir -p "$RUN/rollouts" && ln -sfn "$(cd "$RUN-$as/rollouts/$sv" && pwd)" "$RUN/rollouts/$as"
  ;;
eval)  # every variant under RUN/rollouts; the per-frame rows reach OUT first (per_frame.csv.gz,
  # the file to keep), then the report and the return contrast
  repro --variants "${VARIANTS// /,}" --stages evaluate > "$OUT/eval.log" 2>&1 || exit 1
  gzip -9nc "$RUN/eval/per_frame.csv" > "$OUT/per_frame.csv.gz"
  repro --variants "${VARIANTS// /,}" --stages report >> "$OUT/eval.log" 2>&1
  consistency "$RUN" >> "$OUT/eval.log" 2>&1
  (cd "$RUN" && tar czf "$OUT/eval.tar.gz" stages.json eval plans)
  ;;
sweep)  # one rollout setting per entry, spread over GPUS like `rollout`; tables into OUT
  models_and_test_set
  IFS=';' read -ra entries <<< "${SWEEP:?SWEEP=\"name:args;...\" is needed}"
  baselines=$(python -c "from millivid.reproduce import BASELINES, RUN_AE_BASELINES as A
print(' '.join(BASELINES + A))")
  pids=()
  i=0
  for entry in "${entries[@]}"; do
    name=${entry%%:*}
    read -ra args <<< "${entry#*:}"
    sweep_run="$RUN-$name"
    beside "$sweep_run"
    for b in $baselines; do  # the same in every sweep: made and scored once, in RUN
      mkdir -p "$RUN/rollouts/$b" "$sweep_run/rollouts"
      ln -sfn "$(cd "$RUN/rollouts/$b" && pwd)" "$sweep_run/rollouts/$b"
    done
    for v in $VARIANTS; do ln -sfn "$(cd "$RUN/video/$v" && pwd)" "$sweep_run/video/$v"; done
    gpu=$(gpu_of $i); i=$((i + 1))
    ([ -n "$gpu" ] && export CUDA_VISIBLE_DEVICES=$gpu
    rollouts "$sweep_run" --variants "${VARIANTS// /,}" --stages rollout,evaluate "${args[@]}" \
      >> "$OUT/sweep_$name.log" 2>&1 && sweep_tables "$sweep_run" "$name" &&
      consistency "$sweep_run" >> "$OUT/sweep_$name.log" 2>&1 && sweep_tables "$sweep_run" "$name" \
        eval/self_consistency.md eval/self_consistency.json) &
    pids+=($!)
  done
  finish "${pids[@]}"
  ;;
ae)  # like-for-like: same data, steps and batch; the trainings share the GPU. A call stopped by
  # `timeout` waits for the trainers to save; the next call resumes them, and the quality check
  # and grids come with the call that finishes
  # each variant: config overrides, separated by spaces; c32-30db: the 30 dB model
  # (checkpoints/mini/ae-c32, with AE_STEPS=18000 AE_COOLDOWN=0.25; docs/AUTOENCODER.md)
  declare -A AE_SET=([hierarchical]=ae.kind=hierarchical [cascaded]=ae.kind=cascaded
    [all-levels]=ae.all_levels=true [c32]=ae.channels=32
    [c32-lr2]="ae.channels=32 ae_train.lr=2e-3"
    [c32-30db]="ae.channels=32 ae_train.lr=2e-3 ae_train.batch_size=1024 ae_train.num_workers=6")
  kinds=${AE_VARIANTS:-hierarchical cascaded all-levels}
  stop=0
  trap 'stop=1' TERM
  pids=()
  for k in $kinds; do
    [ -n "${AE_SET[$k]+x}" ] || { echo "unknown AE variant $k (${!AE_SET[*]})" >&2; exit 2; }
    sets=()
    for o in ${AE_SET[$k]}; do sets+=(--set "$o"); done
    resume=()
    [ -d "$RUN/ae-$k/checkpoint" ] && resume=(--resume)
    (trap : TERM; python -m millivid ae train --preset "$PRESET" --data "$RUN/data/train" \
      --out "$RUN/ae-$k" --device "$DEVICE" "${sets[@]}" --set ae_train.steps="$AE_STEPS" \
      --set ae_train.cooldown="$AE_COOLDOWN" --set ae_train.compile="$COMPILE" "${resume[@]}" \
      >> "$RUN/ae_train_$k.log" 2>&1) &
    pids+=($!)
  done
  finish "${pids[@]}" || exit 1
  [ "$stop" = 1 ] && exit 1  # stopped: evaluated by the call that finishes
  for k in $kinds; do  # OUT: ae_quality.txt (with each training's last lines) + one grid each
    { echo "== $k"; tr '\r' '\n' < "$RUN/ae_train_$k.log" | tail -n 3; } >> "$OUT/ae_quality.txt"
    python benchmarks/bench_autoencoder.py quality --ckpt "$RUN/ae-$k" --data "$RUN/data/test" \
      --videos "$TEST_VIDEOS" --device "$DEVICE" >> "$OUT/ae_quality.txt" 2>&1
    python -m millivid ae recon --ckpt "$RUN/ae-$k" --video "$(ls "$RUN"/gt/*.npz | head -1)" \
      --out "$OUT/ae_recon_$k.png" --device "$DEVICE" >> "$OUT/ae_quality.txt" 2>&1
  done
  ;;
all)  # one command to repeat on machines that cap how long a command may run
  items=()
  for phase in ${PHASES:-data train export rollout eval}; do
    case $phase in data | train | export | rollout | shipped | eval) ;;
    *) echo "PHASES: unknown phase $phase (data train export rollout shipped eval)" >&2
      exit 2 ;;
    esac
    items+=("$phase $phase")
  done
  in_order "${items[@]}" || exit $?
  echo "all phases done: $RUN (${PHASES:-data train export rollout eval})"
  ;;
curve)  # the benchmark against training steps, repeatable like `all`: data, then for each of
  # POINTS the variants trained on to that step (`train`) and scored there (a sweep s<point>);
  # then OUT/steps_curve.png, .md and .json (benchmarks/scaling_curve.py, first variant −
  # second; POINTS_JSON: a .json of earlier points, whose per_frame.csv are gone, joins them)
  items=("data data")
  for n in ${POINTS:?POINTS=\"2500 5000 ...\" is needed}; do
    items+=("train-s$n train TRAIN_STEPS=$n" "sweep-s$n sweep SWEEP=s$n:")
  done
  in_order "${items[@]}" || exit $?
  read -ra vs <<< "$VARIANTS"
  args=()
  for n in $POINTS; do args+=(--point "$n=$RUN-s$n/eval/per_frame.csv"); done
  [ -n "${POINTS_JSON:-}" ] && args+=(--points-json "$POINTS_JSON")
  [ "${#vs[@]}" -ge 2 ] && python benchmarks/scaling_curve.py "${args[@]}" --preset "$PRESET" \
    --method "${vs[0]}" --baseline "${vs[1]}" --out "$OUT/steps_curve.png" \
    --json "$OUT/steps_curve.json" > "$OUT/steps_curve.md"
  echo "curve done: $RUN-s* ($POINTS)"
  ;;
*)
  echo "usage: $0 data|train|export|rollout|eval|sweep|ae|bench|all|curve" >&2
  exit 2
  ;;
esac
