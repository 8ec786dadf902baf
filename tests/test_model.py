"""The network is the founding one: word ids -> E -> W -> softmax, with named layers and a config round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from model.neighbours import nearest_neighbours
from model.objectives import FullSoftmax, NegativeSampling, SampledSoftmax
from model.optimizer import BatchSGD
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


@pytest.mark.parametrize("objective, noise", [
    (NegativeSampling(negatives=2), tf.random.stateless_uniform([64, 2], [1, 2], 0, 8, tf.int32)),
    (NegativeSampling(negatives=2), tf.constant([[0, 2, 4, 6]])),
    (SampledSoftmax(np.full(8, 1 / 8)), tf.constant([[0, 2, 4, 6]])),
    (FullSoftmax(), tf.constant([[0]])),
], ids=["negative", "negative-shared-noise", "sampled", "full"])
def test_each_objective_lowers_its_loss_on_a_learnable_corpus(objective, noise):
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    step = make_train_step(model, objective, BatchSGD())
    weights = tf.ones([64])
    first = float(step(CENTRES, CONTEXTS, weights, noise, tf.constant(0.05)))
    for _ in range(150):
        last = float(step(CENTRES, CONTEXTS, weights, noise, tf.constant(0.05)))
    assert last < 0.8 * first


def test_noise_words_shared_by_a_run_score_as_if_each_pair_had_drawn_them():
    # Noise [1, 4] shares four words with all 64 pairs at weight 2 / 4 each; [64, 4] gives every pair the same
    # four words, and [16, 4] every run of 4 pairs: the same losses. Against per-pair rows of the first two
    # words alone ([64, 2], weight 2 / 2 = 1) the sums differ.
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([8, 4], [3, 4]))
    loss = NegativeSampling(negatives=2)
    shared = loss(model, CENTRES, CONTEXTS, tf.constant([[0, 2, 4, 6]]))
    np.testing.assert_allclose(loss(model, CENTRES, CONTEXTS, tf.tile([[0, 2, 4, 6]], [64, 1])), shared, rtol=1e-6)
    np.testing.assert_allclose(loss(model, CENTRES, CONTEXTS, tf.tile([[0, 2, 4, 6]], [16, 1])), shared, rtol=1e-6)
    assert not np.allclose(loss(model, CENTRES, CONTEXTS, tf.tile([[0, 2]], [64, 1])), shared)


def test_full_softmax_gradients_written_by_hand_equal_automatic_differentiation():
    # FullSoftmax differentiates its softmax by hand (the logits' gradient comes out of the forward pass, the
    # bias's gradient out of the same product as W's); TensorFlow's own softmax cross-entropy must agree.
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([8, 4], [3, 4]))
    model.context_bias.assign(tf.random.stateless_normal([8], [5, 6]))
    pair_weights = tf.constant([1.0, 0.0, 2.0, 0.5] * 16)
    variables = [model.embeddings, model.context_weights, model.context_bias]
    with tf.GradientTape(persistent=True) as tape:
        by_hand = tf.reduce_sum(FullSoftmax()(model, CENTRES, CONTEXTS, tf.constant([[0]])) * pair_weights)
        logits = tf.matmul(tf.gather(model.embeddings, CENTRES), model.context_weights, transpose_b=True)
        automatic = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
            CONTEXTS, logits + model.context_bias) * pair_weights)
    np.testing.assert_allclose(by_hand, automatic, rtol=1e-6)
    for mine, reference in zip(tape.gradient(by_hand, variables), tape.gradient(automatic, variables)):
        np.testing.assert_allclose(tf.convert_to_tensor(mine), tf.convert_to_tensor(reference), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("objective, noise", [
    (NegativeSampling(negatives=2), tf.constant([[0, 2, 4, 6]])),
    (FullSoftmax(), tf.constant([[0]])),
], ids=["negative", "full"])
def test_a_step_without_its_loss_updates_exactly_as_one_with_it(objective, noise):
    # The loop reads the loss only now and then; the steps in between skip it, and must train the same.
    models = [SkipGram(vocabulary_size=8, embedding_dim=4, seed=1) for _ in range(2)]
    steps = [make_train_step(model, objective, BatchSGD()) for model in models]
    for _ in range(3):
        with_loss = steps[0](CENTRES, CONTEXTS, tf.ones([64]), noise, tf.constant(0.05))
        without = steps[1](CENTRES, CONTEXTS, tf.ones([64]), noise, tf.constant(0.05), with_loss=False)
    assert float(with_loss) > 0 and float(without) == 0
    for first, second in zip(models[0].weights, models[1].weights):
        np.testing.assert_array_equal(first.numpy(), second.numpy())


def test_pairs_with_weight_zero_change_nothing():
    # The padding that fills a chunk's last batch carries weight 0: a step on it leaves E, W and W's bias as they were.
    model = SkipGram(vocabulary_size=8, embedding_dim=4, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([8, 4], [3, 4]))
    before = [variable.numpy() for variable in (model.embeddings, model.context_weights, model.context_bias)]
    step = make_train_step(model, NegativeSampling(negatives=2), BatchSGD())
    step(CENTRES, CONTEXTS, tf.zeros([64]), tf.constant([[0, 2, 4, 6]]), tf.constant(0.05))
    for old, variable in zip(before, (model.embeddings, model.context_weights, model.context_bias)):
        np.testing.assert_array_equal(old, variable.numpy())


def test_a_row_hit_by_many_pairs_moves_by_at_most_max_row_updates_pairs_worth():
    # Row 0 gets four gradients of 1, row 1 one, row 2 only a padding pair's zero. With a cap of 2 and
    # learning rate 1: row 0 moves by 4 x 1 x (2 / 4) = 2, row 1 by 1 (under the cap), row 2 not at all.
    variable = tf.Variable(tf.zeros([3, 1]))
    gradient = tf.IndexedSlices(tf.constant([[1.0], [1.0], [1.0], [1.0], [1.0], [0.0]]), tf.constant([0, 0, 0, 0, 1, 2]))
    BatchSGD(max_row_updates=2).apply([gradient], [variable], tf.constant(1.0), tf.constant(5.0))
    np.testing.assert_allclose(variable.numpy(), [[-2.0], [-1.0], [0.0]])
