"""The article's published operations, in the article's order, kept only so the tests can show
that :func:`klloss.klloss_v2_published` computes bit-for-bit what the article's code computes.

This is a transcription of the algorithm (the sequence of tensor operations), used as evidence,
not as library code.
"""

import torch
import torch.nn.functional as F


def article_klloss_v2(logits_t, input, target, label, beta):
    log_q = F.log_softmax(input, dim=1)
    log_p = F.log_softmax(target, dim=1)
    p = F.softmax(target, dim=1)
    terms = p * (log_p - log_q)
    pieces = []
    for y_i, z_i in zip(label.cpu(), logits_t.detach()):
        pieces.append(z_i[y_i] - z_i)
    m = torch.cat(pieces).reshape(-1, input.size(1))
    m = m / beta
    m = m + 8.0
    return (m * terms).sum() / input.shape[0]
