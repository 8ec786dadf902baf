"""The network is the founding one: word ids -> E -> W -> softmax, with named layers and a config round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.pairs import step_batch
from model.neighbours import nearest_neighbours
from model.objectives import FullSoftmax, NegativeSampling, SampledSoftmax, row_dots, softplus
from model.optimizer import BatchSGD, RowBounds, bounded_rows
from model.skipgram import SkipGram
from model.train_step import make_train_step


def test_layers_are_named_and_shaped_as_the_design_draws_them():
    model = SkipGram(vocabulary_size=10, embedding_dim=2)
    assert [layer.name for layer in model.layers] == ["word_ids", "E", "W"]
    assert model.embeddings.shape == (10, 2)
    assert model.context_weights.shape == (10, 2)
    assert model.context_bias.shape == (10,)


def test_calling_the_model_on_ids_gives_a_distribution_over_the_vocabulary():
    model = SkipGram(vocabulary_size=10, embedding_dim=2)
    probabilities = model(tf.constant([3, 7])).numpy()
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    # W starts at zero (as word2vec's output matrix does), so the first prediction is uniform: 1/10 each.
    np.testing.assert_allclose(probabilities, 0.1, rtol=1e-6)


def test_config_round_trips_through_get_config_and_a_keras_file(tmp_path):
    model = SkipGram(vocabulary_size=10, embedding_dim=2, seed=3, name="skipgram")
    rebuilt = SkipGram.from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config() == {
        "vocabulary_size": 10, "embedding_dim": 2, "seed": 3, "name": "skipgram"}
    model.save(tmp_path / "skipgram.keras")
    loaded = keras.saving.load_model(tmp_path / "skipgram.keras")
    ids = tf.constant([0, 4, 9])
    np.testing.assert_allclose(loaded(ids), model(ids))
    np.testing.assert_allclose(loaded.embeddings.numpy(), model.embeddings.numpy())


def test_nearest_neighbours_rank_by_cosine_and_skip_the_word_itself():
    # Rows 0 and 1 point the same way (cosine 1), row 2 is orthogonal (0), row 3 opposite (-1).
    embeddings = tf.constant([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    ids, scores = nearest_neighbours(embeddings, tf.constant([0]), k=3)
    assert ids.numpy().tolist() == [[1, 2, 3]]
    np.testing.assert_allclose(scores.numpy(), [[1.0, 0.0, -1.0]], atol=1e-6)


# Two topics over 8 words: 0-3 only ever pair with 0-3, 4-7 with 4-7.
CENTRES = tf.constant([0, 1, 2, 3, 1, 2, 3, 0, 4, 5, 6, 7, 5, 6, 7, 4] * 4)
CONTEXTS = tf.constant([1, 2, 3, 0, 0, 1, 2, 3, 5, 6, 7, 4, 4, 5, 6, 7] * 4)


def topic_batch(noise: tf.Tensor, weights: tf.Tensor | None = None) -> dict:
    """The 64 topic pairs with `noise` words, as the pipeline hands a batch to the step (row counts included)."""
    return step_batch(CENTRES, CONTEXTS, tf.ones([64]) if weights is None else weights, noise, vocabulary_size=8)


@pytest.mark.parametrize("objective, noise", [
    (NegativeSampling(negatives=2), tf.random.stateless_uniform([64, 2], [1, 2], 0, 8, tf.int32)),
    (NegativeSampling(negatives=2), tf.constant([[0, 2, 4, 6]])),
    (SampledSoftmax(np.full(8, 1 / 8)), tf.constant([[0, 2, 4, 6]])),
    (FullSoftmax(), tf.constant([[0]])),
], ids=["negative", "negative-shared-noise", "sampled", "full"])
def test_each_objective_lowers_its_loss_on_a_learnable_corpus(objective, noise):
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    step = make_train_step(model, objective, BatchSGD())
    batch = topic_batch(noise)
    first = step(batch, tf.constant(0.05))
    for _ in range(150):
        last = step(batch, tf.constant(0.05))
    assert np.isfinite(float(last)) and float(last) < 0.8 * float(first)


def test_noise_words_shared_by_a_run_score_as_if_each_pair_had_drawn_them():
    # Noise [1, 4] shares four words with all 64 pairs at weight 2 / 4 each; [64, 4] gives every pair the same
    # four words, and [16, 4] every run of 4 pairs: the same losses. Against per-pair rows of the first two
    # words alone ([64, 2], weight 2 / 2 = 1) the sums differ.
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([8, 4], [3, 4]))
    loss = NegativeSampling(negatives=2)
    shared = loss(model, topic_batch(tf.constant([[0, 2, 4, 6]])))
    for tiled in (tf.tile([[0, 2, 4, 6]], [64, 1]), tf.tile([[0, 2, 4, 6]], [16, 1])):
        np.testing.assert_allclose(loss(model, topic_batch(tiled)), shared, rtol=1e-6)
    assert not np.allclose(loss(model, topic_batch(tf.tile([[0, 2]], [64, 1]))), shared)


def test_a_noise_word_that_is_the_pairs_own_context_is_skipped_as_word2vec_does():
    # One pair (centre 0, context 1) against noise words [1, 2] at weight 2 / 2 = 1: word 1 is its own context,
    # so the loss is softplus(-h.w1) + softplus(h.w2) alone. With h = (1, 0), w1 = (2, 0), w2 = (0.5, 0):
    # softplus(-2) + softplus(0.5) = 0.126928 + 0.974077 = 1.101005 (not + softplus(2) = 2.126928 more).
    model = SkipGram(vocabulary_size=3, embedding_dim=2)
    model.embeddings.assign([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    model.context_weights.assign([[0.0, 0.0], [2.0, 0.0], [0.5, 0.0]])
    batch = step_batch(tf.constant([0]), tf.constant([1]), tf.ones([1]), tf.constant([[1, 2]]), vocabulary_size=3)
    np.testing.assert_allclose(NegativeSampling(negatives=2)(model, batch), [1.101005], rtol=1e-5)
    # It does not count towards the noise word's row either: word 1 is scored as noise by no pair.
    assert batch["noise_pairs"].numpy().tolist() == [[0.0, 1.0]]


def test_sampled_softmax_written_out_equals_tensorflows_and_compiles_with_xla():
    # The same loss as tf.nn.sampled_softmax_loss (accidental hits removed: pair 0's context 2 is also drawn),
    # with the same gradients while no bound binds, computed under XLA.
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([8, 4], [3, 4]))
    model.context_bias.assign(tf.random.stateless_normal([8], [5, 6]))
    probabilities = np.arange(1, 9) / 36
    sampled = tf.constant([[2, 5, 5, 7]])
    batch = step_batch(tf.constant([0, 1, 3]), tf.constant([2, 4, 6]), tf.ones([3]), sampled, vocabulary_size=8)
    variables = [model.embeddings, model.context_weights, model.context_bias]
    objective = SampledSoftmax(probabilities)
    with tf.GradientTape(persistent=True) as tape:
        ours = tf.function(lambda: objective(model, batch), jit_compile=True)()
        expected = 4 * probabilities
        reference = tf.nn.sampled_softmax_loss(
            model.context_weights, model.context_bias, tf.constant([[2], [4], [6]], tf.int64),
            tf.gather(model.embeddings, [0, 1, 3]), num_sampled=4, num_classes=8, remove_accidental_hits=True,
            sampled_values=(tf.constant([2, 5, 5, 7], tf.int64), tf.constant(expected[[2, 4, 6]], tf.float32)[:, None],
                            tf.constant(expected[[2, 5, 5, 7]], tf.float32)))
        totals = tf.reduce_sum(ours), tf.reduce_sum(reference)
    np.testing.assert_allclose(ours, reference, rtol=1e-5)
    for mine, theirs in zip(tape.gradient(totals[0], variables), tape.gradient(totals[1], variables)):
        np.testing.assert_allclose(tf.convert_to_tensor(mine), tf.convert_to_tensor(theirs), rtol=1e-5, atol=1e-6)


def test_full_softmax_gradients_written_by_hand_equal_automatic_differentiation():
    # FullSoftmax differentiates its softmax by hand (the logits' gradient comes out of the forward pass, the
    # bias's gradient out of the same product as W's); TensorFlow's own softmax cross-entropy must agree while
    # no row is hit by more than its bound (8 true pairs per word here, under 16).
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([8, 4], [3, 4]))
    model.context_bias.assign(tf.random.stateless_normal([8], [5, 6]))
    pair_weights = tf.constant([1.0, 0.0, 2.0, 0.5] * 16)
    variables = [model.embeddings, model.context_weights, model.context_bias]
    with tf.GradientTape(persistent=True) as tape:
        by_hand = tf.reduce_sum(FullSoftmax()(model, topic_batch(tf.constant([[0]]), pair_weights)) * pair_weights)
        logits = tf.matmul(tf.gather(model.embeddings, CENTRES), model.context_weights, transpose_b=True)
        automatic = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
            CONTEXTS, logits + model.context_bias) * pair_weights)
    np.testing.assert_allclose(by_hand, automatic, rtol=1e-6)
    for mine, reference in zip(tape.gradient(by_hand, variables), tape.gradient(automatic, variables)):
        np.testing.assert_allclose(tf.convert_to_tensor(mine), tf.convert_to_tensor(reference), rtol=1e-5, atol=1e-6)


def test_full_softmax_bounds_each_row_by_its_true_pairs_and_its_probability_mass():
    # V = 2, W = 0 and a bias of 0: every pair gives p = 1/2 to both words. 40 pairs all predict word 0, with
    # h = (1, 0) for each. Row 0: 40 true pairs and 40 x 1/2 = 20 pairs' worth of probability; its gradient,
    # 40 x (1/2 - 1) = -20 in the first coordinate, is scaled by min(16 / 40, 10 / 20) = 0.4 to -8 (bounds 16 for
    # true pairs, 10 for noise). Row 1: probability alone, 20 pairs' worth, gradient 40 x 1/2 = 20, scaled by
    # 10 / 20 to 10. The bias's gradient alike.
    model = SkipGram(vocabulary_size=2, embedding_dim=2)
    model.embeddings.assign([[1.0, 0.0], [0.0, 0.0]])
    batch = step_batch(tf.zeros([40], tf.int32), tf.zeros([40], tf.int32), tf.ones([40]), tf.constant([[0]]), 2)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(FullSoftmax(RowBounds(16.0, 10.0))(model, batch))
    weights_gradient, bias_gradient = tape.gradient(total, [model.context_weights, model.context_bias])
    np.testing.assert_allclose(weights_gradient, [[-8.0, 0.0], [10.0, 0.0]], rtol=1e-5)
    np.testing.assert_allclose(bias_gradient, [-8.0, 10.0], rtol=1e-5)


def test_a_shared_noise_row_moves_by_at_most_its_bound_in_pairs_worth():
    # 2,048 pairs share 32 noise words at weight 15 / 32: each noise word is worth 2,048 x 15 / 32 = 960 pairs to
    # its row, and the bound of 320 scales its gradient by 320 / 960 = 1/3. Word 0 is no pair's context.
    model = SkipGram(vocabulary_size=40, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([40, 4], [3, 4]))
    centres = tf.random.stateless_uniform([2048], [5, 6], 1, 40, tf.int32)
    contexts = tf.random.stateless_uniform([2048], [7, 8], 1, 40, tf.int32)
    noise = tf.constant([[0] + list(range(40 - 31, 40))])
    batch = step_batch(centres, contexts, tf.ones([2048]), noise, vocabulary_size=40)
    assert batch["noise_pairs"][0, 0] == 2048

    def noise_row_gradient(bounds: RowBounds) -> np.ndarray:
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(NegativeSampling(15, bounds)(model, batch))
        return tf.convert_to_tensor(tape.gradient(total, model.context_weights))[0].numpy()

    unbounded = noise_row_gradient(RowBounds(1e9, 1e9))
    np.testing.assert_allclose(noise_row_gradient(RowBounds()), unbounded / 3, rtol=1e-5)


def test_pairs_with_weight_zero_change_nothing():
    # The padding that fills a chunk's last batch carries weight 0: a step on it leaves E, W and W's bias as they were.
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([8, 4], [3, 4]))
    before = [variable.numpy() for variable in (model.embeddings, model.context_weights, model.context_bias)]
    step = make_train_step(model, NegativeSampling(negatives=2), BatchSGD())
    step(topic_batch(tf.constant([[0, 2, 4, 6]]), tf.zeros([64])), tf.constant(0.05))
    for old, variable in zip(before, (model.embeddings, model.context_weights, model.context_bias)):
        np.testing.assert_array_equal(old, variable.numpy())


def test_a_row_read_through_its_bound_gets_its_gradient_scaled():
    # Row 0 is read four times and row 1 once; scales 0.5 for row 0's reads and 1 for row 1's: the summed
    # gradient of row 0 is 4 x 0.5 = 2, of row 1 is 1, and row 2, not read, gets none.
    variable = tf.Variable(tf.zeros([3, 1]))
    with tf.GradientTape() as tape:
        rows = bounded_rows(variable, tf.constant([0, 0, 0, 0, 1]), tf.constant([0.5, 0.5, 0.5, 0.5, 1.0]))
        total = tf.reduce_sum(rows + 1.0)
    np.testing.assert_allclose(tf.convert_to_tensor(tape.gradient(total, variable)), [[2.0], [1.0], [0.0]])


@pytest.mark.parametrize("true_pairs, noise_pairs, learning_rate, scale", [
    (8.0, 0.0, 0.025, 1.0),  # Within both bounds: unchanged.
    (64.0, 0.0, 0.025, 0.25),  # 64 true pairs: 16 / 64.
    (0.0, 960.0, 0.025, 1 / 3),  # Noise alone: 320 / 960.
    (32.0, 960.0, 0.025, 1 / 3),  # Both over: the smaller factor, min(16 / 32, 320 / 960), for the whole row.
    (16.0, 0.0, 0.05, 0.5),  # Twice the rate, half the bound: 8 / 16.
    (0.0, 320.0, 0.0125, 1.0),  # Below the default rate the bounds stay as they are.
])
def test_row_bounds_give_one_factor_per_row(true_pairs, noise_pairs, learning_rate, scale):
    assert float(RowBounds().scale(tf.constant(true_pairs), tf.constant(noise_pairs), learning_rate)) == \
        pytest.approx(scale)


def test_a_value_that_is_not_finite_is_reported_by_the_step():
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    step = make_train_step(model, NegativeSampling(negatives=2), BatchSGD())
    batch = topic_batch(tf.constant([[0, 2, 4, 6]]))
    assert np.isfinite(float(step(batch, tf.constant(0.025))))
    model.embeddings.assign(tf.tensor_scatter_nd_update(model.embeddings, [[3]], [[float("nan")] * 4]))
    assert np.isnan(float(step(batch, tf.constant(0.025))))


INF = float("inf")


@pytest.mark.parametrize("objective", [NegativeSampling(negatives=2), SampledSoftmax(np.full(8, 1 / 8)), FullSoftmax()],
                         ids=["negative", "sampled", "full"])
@pytest.mark.parametrize("variable, row, value", [
    # W's row 7 is read only as noise (as one of the softmax's words in `full`), never as a context. Every row of
    # E is positive in its first value, so every score that reads row 7 is -inf: a term of 0 in softplus and in
    # logsumexp, where a check of the loss alone would miss it (the summed loss stays finite).
    ("W", 7, [-INF, 0.0, 0.0, 0.0]),
    # Row 1 is pair 0's context: its true score is +inf, and softplus(-inf) is 0 in negative sampling's loss.
    ("W", 1, [INF, 0.0, 0.0, 0.0]),
    ("W", 6, [np.nan, 0.0, 0.0, 0.0]),
    # Pair 2's centre, 2, against W's first values (1, except -1 for its context 3): true score +inf, noise -inf.
    ("E", 2, [-INF, 0.0, 0.0, 0.0]),
    ("E", 0, [INF, 0.0, 0.0, 0.0]),
])
def test_a_non_finite_value_in_a_row_the_step_reads_is_reported_by_that_step(objective, variable, row, value):
    # Four pairs over words 0-3 and noise words 6 and 7, which are no pair's context. The first step is finite;
    # then one row gets a non-finite value, and the very next step reports it.
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.embeddings.assign(tf.concat([tf.ones([8, 1]), model.embeddings[:, 1:]], axis=1))
    model.context_weights.assign(tf.concat([tf.constant([[1.0], [1.0], [1.0], [-1.0], [1.0], [1.0], [1.0], [1.0]]),
                                            tf.random.stateless_normal([8, 3], [3, 4])], axis=1))
    noise = tf.constant([[0]]) if isinstance(objective, FullSoftmax) else tf.constant([[6, 7]])
    batch = step_batch(tf.constant([0, 1, 2, 3]), tf.constant([1, 2, 3, 0]), tf.ones([4]), noise, vocabulary_size=8)
    step = make_train_step(model, objective, BatchSGD())
    assert np.isfinite(float(step(batch, tf.constant(0.025))))
    target = {"E": model.embeddings, "W": model.context_weights}[variable]
    target.assign(tf.tensor_scatter_nd_update(target, [[row]], [value]))
    assert not np.isfinite(float(step(batch, tf.constant(0.025))))


def test_softplus_and_its_gradient_are_tensorflows_at_every_scale():
    logits = tf.constant([-200.0, -30.0, -6.0, -1e-3, 0.0, 1e-3, 0.5, 6.0, 30.0, 200.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours, theirs = softplus(logits), tf.nn.softplus(logits)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)
    np.testing.assert_allclose(tape.gradient(ours, logits), tf.sigmoid(logits), rtol=1e-6, atol=1e-30)
    # Unlike tf.nn.softplus (0 at -inf), a score of -inf is not finite in the loss either.
    assert np.isnan(softplus(tf.constant([-INF])).numpy()).all() and softplus(tf.constant([INF])).numpy()[0] == INF


@pytest.mark.parametrize("width", [4, 32, 100, 101, 300])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_row_dots_and_their_gradients_are_those_of_the_summed_product(width, jit_compile):
    # 100 and 300 are summed in two stages (blocks of 25 and 30 columns), 4, 32 and 101 (prime) at once.
    rows, other_rows = tf.random.stateless_normal([64, width], [1, 2]), tf.random.stateless_normal([64, width], [3, 4])
    upstream = tf.random.stateless_normal([64], [5, 6])

    def dots_and_gradients(dots):
        @tf.function(jit_compile=jit_compile, autograph=False)
        def compute():
            with tf.GradientTape() as tape:
                tape.watch([rows, other_rows])
                values = dots(rows, other_rows)
            return values, tape.gradient(values, [rows, other_rows], output_gradients=upstream)
        return compute()

    ours, (our_rows, our_other_rows) = dots_and_gradients(row_dots)
    theirs, (their_rows, their_other_rows) = dots_and_gradients(lambda a, b: tf.reduce_sum(a * b, axis=-1))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(our_rows, their_rows)
    np.testing.assert_array_equal(our_other_rows, their_other_rows)


@pytest.mark.parametrize("value", [INF, -INF, np.nan])
def test_a_row_dot_that_reads_a_non_finite_value_is_not_finite(value):
    # Summed in two stages (300 columns): the non-finite value still reaches its row's dot, and only that one.
    rows = tf.tensor_scatter_nd_update(tf.ones([4, 300]), [[2, 157]], [value])
    dots = tf.function(row_dots, jit_compile=True, autograph=False)(rows, tf.ones([4, 300])).numpy()
    assert not np.isfinite(dots[2]) and np.isfinite(np.delete(dots, 2)).all()
