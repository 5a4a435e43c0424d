import torch
import torch.nn.functional as F


def label_smoothing_ce(logits, target, epsilon):
    log_p = F.log_softmax(logits, dim=-1)
    nll = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)
    uniform = -log_p.mean(dim=-1)
    return ((1 - epsilon) * nll + epsilon * uniform).mean()
