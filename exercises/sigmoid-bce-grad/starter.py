# With logit z, label y in {0, 1}, p = sigmoid(z) and
#     L = -(y*log(p) + (1 - y)*log(1 - p)),
# write dL/dz as an expression in z and y (p may stand for sigmoid(z)), in Python/SymPy style
# ("sigmoid(z) ...", "exp(-z)", "^" or "**" for powers) or in LaTeX
# (r"\frac{1}{1 + e^{-z}} ...": use a raw string so backslashes survive).
sigmoid_bce_grad = ""
