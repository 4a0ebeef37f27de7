r"""The article's ``klloss_v2``, step for step, quirks included: the algorithm as published, for
reading beside the article and for checking every number it prints.

Walked through in ``notebooks/01-walkthrough.ipynb``; its quirks in
``notebooks/04-what-it-teaches.ipynb``. For training, use :func:`klloss.klloss_v2`.
"""

import torch
import torch.nn.functional as F

from .options import ARTICLE_OFFSET


def klloss_v2_published(logits_t, input, target, label, beta):
    r"""The article's ``klloss_v2``: :math:`\frac1N \sum_{i,c} w_{ic} p_{ic} (\log p_{ic} - \log q_{ic})`,
    :math:`w = m / \beta + 8`.

    Arguments keep the article's names and order:

    * ``logits_t`` -- teacher logits :math:`z`, shape (N, C), used only for the margin (detached);
    * ``input`` -- student logits :math:`s`, shape (N, C);
    * ``target`` -- teacher logits again, shape (N, C), turned into :math:`p` (NOT detached);
    * ``label`` -- true classes :math:`y`, shape (N,);
    * ``beta`` -- :math:`\beta`, divides the margin.

    Kept on purpose, because this function exists to show exactly what the article computes:

    * the margin is built in a Python loop, one sample at a time, after copying ``label`` to
      the host once (on a GPU that is one host synchronisation per batch; the loop then reads
      host memory);
    * ``target`` is not detached, so gradient flows into whatever produced the teacher logits;
    * the weight is formed as the article forms it, ``margin / beta`` then ``+ 8``;
    * nothing is checked: a label of -1 (or -100) silently indexes from the end of the row.
    """
    # log q = log_softmax(s)
    log_input = F.log_softmax(input, dim=1)
    # log p = log_softmax(z)
    log_target = F.log_softmax(target, dim=1)
    # p = softmax(z); gradient still reaches `target`
    target_prob = F.softmax(target, dim=1)
    # per-class KL terms, p (log p - log q)
    output = target_prob * (log_target - log_input)
    # m_i = z_i[y_i] - z_i, one sample at a time, labels copied to the host
    rows = [z_i[y_i] - z_i for y_i, z_i in zip(label.cpu(), logits_t.detach())]
    margin = torch.cat(rows).reshape(-1, input.size(1))
    # w = m / beta + 8
    weight = margin / beta
    weight = weight + ARTICLE_OFFSET
    # L = (1/N) sum_{i,c} w p (log p - log q)
    return (weight * output).sum() / input.shape[0]
